"""brainmodels: JAX models for computational neuroscience.

Three jobs, one library: fMRI voxel encoders (``brainmodels.encoders``), circuit
simulation (``brainmodels.kuramoto``, ``brainmodels.akorn``, ``brainmodels.snn``) and
representational-similarity metrics (``brainmodels.rsa``), joined by one labelled-data
convention (``brainmodels.data``).

Sub-packages are imported lazily so that ``import brainmodels`` stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from brainmodels._compile_cache import configure as _configure_compile_cache

_configure_compile_cache()  # JAX's persistent compilation cache (see brainmodels._compile_cache)

try:
    __version__ = version("brainmodels")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_SUBMODULES = (
    "data",
    "brainmaps",
    "rsa",
    "kuramoto",
    "akorn",
    "whitening",
    "encoders",
    "snn",
    "datasets",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"brainmodels.{name}")
    raise AttributeError(f"module 'brainmodels' has no attribute {name!r}")
