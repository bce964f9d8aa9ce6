"""Shape-annotated array aliases (jaxtyping) used in signatures across brainmodels.

Example: ``def fit(X: Float[ArrayLike, "stimulus feature"], Y: Float[ArrayLike, "stimulus voxel"])``.
Runtime checks are switched on in tests with jaxtyping's import hook.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

try:  # jaxtyping is a light dependency of the test extra; annotations degrade gracefully
    from jaxtyping import Array, Bool, Float, Int, Key, PRNGKeyArray, Shaped
except ImportError:  # pragma: no cover
    Array = jax.Array

    class _Alias:
        def __class_getitem__(cls, item):
            return Any

    Float = Int = Bool = Shaped = Key = _Alias  # type: ignore[misc,assignment]
    PRNGKeyArray = Any  # type: ignore[misc,assignment]

#: Anything convertible to an array: numpy, JAX, lists, or an xarray DataArray.
ArrayLike = Any
NDArray = np.ndarray

__all__ = ["Array", "ArrayLike", "Bool", "Float", "Int", "Key", "NDArray", "PRNGKeyArray", "Shaped"]
