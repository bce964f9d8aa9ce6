"""Whether JAX computes on the CPU, known without starting JAX's backends when possible.

Host fast paths (numpy/BLAS/numba for small ridge designs and RDM comparisons) are taken on a
CPU backend. Asking ``jax.default_backend()`` starts the backends, which costs ~10 ms of
plugin discovery in a fresh process: more than a whole small comparison. :func:`cpu_backend`
answers from JAX's ``jax_platforms`` setting, then from backends already started, then from
the absence of any accelerator plugin package, and asks JAX only when one is installed.
"""

from __future__ import annotations

import functools
import importlib.util

import jax

__all__ = ["cpu_backend"]

#: Packages through which JAX gets a non-CPU backend (CUDA, ROCm, TPU, Metal, the
#: ``jax_plugins`` namespace of third-party PJRT plugins).
_ACCELERATOR_PACKAGES = ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin",
                         "jax_rocm6_plugin", "jax_rocm7_plugin", "libtpu", "jax_metal")


@functools.cache
def _accelerator_plugin_installed() -> bool:
    return any(importlib.util.find_spec(name) is not None for name in _ACCELERATOR_PACKAGES)


def cpu_backend() -> bool:
    """True when JAX's default backend is (or, once started, will be) the CPU.

    An unknown accelerator that none of these checks sees only makes a small computation run
    on the host: the answer decides speed, never results.
    """
    platforms = jax.config.jax_platforms
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    try:
        from jax._src import xla_bridge

        started = bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # private API moved: ask JAX
        started = True
    if started or _accelerator_plugin_installed():
        return jax.default_backend() == "cpu"
    return True


_accelerator_plugin_installed()  # once, at import (~0.5 ms of file-system lookups)
