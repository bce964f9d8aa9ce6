"""Where an RSA computation runs: the host (numpy, numba, BLAS) or JAX, and the host's threads.

One module owns the choice, so a comparison method is written once and this decides:

* :func:`on_host` - concrete arrays on a CPU backend run the host accelerators (numpy/BLAS,
  the numba kernels of :mod:`brainmodels.rsa._host`), which skip XLA's dispatch and
  transfers; traced arrays (inside a caller's ``jit``) and accelerators run the JAX form;
* :func:`traced` - the tracer check itself;
* :func:`host_pool` / :func:`host_map` - a small thread pool for row-wise numpy work (numpy's
  sorts release the GIL);
* :func:`gram_one_thread` - BLAS products pinned to one thread with threadpoolctl.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np

from brainmodels._platform import cpu_backend

__all__ = ["WORKERS", "on_host", "traced", "host_pool", "host_map", "gram_one_thread"]


def traced(*arrays) -> bool:
    """True when any argument is a JAX tracer (the call is inside a caller's ``jit``)."""
    return any(isinstance(x, jax.core.Tracer) for x in arrays)


WORKERS = min(4, os.cpu_count() or 1)


@functools.cache
def host_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(WORKERS, thread_name_prefix="brainmodels-rsa")


def host_map(fn, v: np.ndarray) -> np.ndarray:
    """Apply a row-wise numpy function in row chunks on a small thread pool (numpy's sorts
    release the GIL); one chunk for small inputs."""
    if WORKERS == 1 or v.size < 100_000 or v.shape[0] < 2:
        return fn(v)
    chunks = np.array_split(v, min(4 * WORKERS, v.shape[0]))  # small chunks stay in cache
    return np.concatenate(list(host_pool().map(fn, chunks)))


def on_host(*arrays) -> bool:
    """Concrete inputs on a CPU backend: the small dense steps run in numpy / BLAS, which
    skips XLA's dispatch and transfers (~1 ms per call at 50 x 50 RDMs of 100 conditions)."""
    return not traced(*arrays) and cpu_backend()


def default_float() -> np.dtype:
    """JAX's default float dtype (float64 under ``jax_enable_x64``), read from the flag: 25x
    cheaper than ``jnp.result_type(float)``, which counts at small RDMs."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


@functools.cache
def _blas_control():
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def gram_one_thread(x, y):
    """x @ y.T with BLAS on one thread: the product of two rank stacks is too small to pay for
    BLAS's threads, and the threads spin after each call (~0.1 s), starving the rank pool of
    the next call. Below 10^5 entries the product is plain: the limit itself costs ~10 us
    per call and ~6 ms on the first (threadpoolctl's scan of the loaded libraries)."""
    if x.size + y.size < 100_000:
        return x @ y.T
    with _blas_control().limit(limits=1, user_api="blas"):
        return x @ y.T


