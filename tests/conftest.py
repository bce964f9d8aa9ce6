"""Shared test configuration.

* Strict JAX: rank promotion raises (no silent broadcasting surprises).
* float64 only where a test asks for it, through the ``x64`` fixture.
* A ``seed`` fixture that prints its value so a failure can be replayed
  (override with ``BRAINMODELS_TEST_SEED``).
* Tests never touch the network or ``$HOME``: nilearn's data folder points at a temp dir.
"""

from __future__ import annotations

import os

# JAX's persistent compilation cache (on by default for users, in ~/.cache) stays off in the
# tests: they never write to $HOME; tests/core/test_compile_cache.py checks it in subprocesses
os.environ.setdefault("BRAINMODELS_JAX_CACHE", "off")

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

if os.environ.get("BRAINMODELS_TYPECHECK", "1") != "0":
    # Runtime shape and type checks (jaxtyping + beartype) on every annotated function of
    # brainmodels, installed before any brainmodels module is imported. An int passes where a
    # float is annotated (PEP 484's numeric tower). BRAINMODELS_TYPECHECK=0 switches them off.
    import sys  # noqa: E402
    import types  # noqa: E402

    from beartype import BeartypeConf, beartype  # noqa: E402
    from jaxtyping import install_import_hook  # noqa: E402

    # the hook takes the checker by import path: a module that exists only in the tests
    _checker = types.ModuleType("_brainmodels_typecheck")
    _checker.check = beartype(conf=BeartypeConf(is_pep484_tower=True))
    sys.modules["_brainmodels_typecheck"] = _checker
    install_import_hook("brainmodels", "_brainmodels_typecheck.check")

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="session")
def _no_home_data(tmp_path_factory):
    os.environ.setdefault("NILEARN_DATA", str(tmp_path_factory.mktemp("nilearn_data")))
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield


@pytest.fixture
def strict_dtypes():
    """JAX's strict dtype promotion inside the test: mixing float32 with float64 (or ints with
    floats) raises instead of silently widening. Not global: optax's own updates mix an int32
    step count with floats and would fail under it."""
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("BRAINMODELS_TEST_SEED", "0"))
    print(f"test seed = {value} (replay with BRAINMODELS_TEST_SEED={value})")
    return value


@pytest.fixture
def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX (for comparisons against float64 references)."""
    with jax.enable_x64(True):
        yield
