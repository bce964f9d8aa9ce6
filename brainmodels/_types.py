"""Shape-annotated array aliases (jaxtyping) used in signatures across brainmodels.

Example: ``def fit(X: Float[ArrayLike, "stimulus feature"], Y: Float[ArrayLike, "stimulus voxel"])``.
The annotations document shapes and dtypes; the test suite checks them at run time (jaxtyping's
import hook with beartype, see ``tests/conftest.py``). Public entry points that take lists,
DataArrays or mismatched inputs they report themselves are annotated ``ArrayLike`` (shapes in
the docstring), so their own ``ValueError`` messages stay what users see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from jaxtyping import Array, Bool, Float, Int, Key, PRNGKeyArray, Shaped

#: Anything convertible to an array: numpy, JAX, lists, or an xarray DataArray.
ArrayLike = Any
NDArray = np.ndarray

__all__ = ["Array", "ArrayLike", "Bool", "Float", "Int", "Key", "NDArray", "PRNGKeyArray", "Shaped"]
