"""The test suite runs with jaxtyping + beartype checking every annotated brainmodels function
(``tests/conftest.py``); this guards against a hook that silently stopped working."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.mark.skipif(os.environ.get("BRAINMODELS_TYPECHECK", "1") == "0",
                    reason="runtime type checks switched off")
def test_runtime_shape_checks_are_on():
    from jaxtyping import TypeCheckError

    from brainmodels.snn.surrogate import fast_sigmoid

    assert fast_sigmoid(np.zeros(3, np.float32)).shape == (3,)
    with pytest.raises(TypeCheckError):
        fast_sigmoid(np.arange(3))  # integers where floats are annotated
