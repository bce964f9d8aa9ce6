"""numpy random streams determined by a JAX key.

Small host-side draws (bootstrap counts, permutations of a few hundred conditions) are taken
with numpy's generator seeded from the key's data: the same key gives the same draws on every
backend, and no XLA program is compiled for a draw of a few kilobytes (``jax.random`` costs
~0.1-0.6 s of compilation on a first call).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["host_generators"]


def host_generators(key, n: int) -> list[np.random.Generator]:
    """``n`` independent numpy Generators from a JAX PRNG key (typed, or raw uint32 data)."""
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim:
            raise ValueError(f"key must be a single PRNG key, got a batch of shape {key.shape}")
        data = np.asarray(jax.random.key_data(key))
    else:
        data = np.asarray(key)
        if data.dtype != np.uint32 or data.ndim != 1:
            raise ValueError(f"key must be a jax.random.key (or a raw uint32 key), got dtype "
                             f"{data.dtype} and shape {data.shape}")
    seeds = np.random.SeedSequence(data.astype(np.uint64).ravel().tolist()).spawn(n)
    return [np.random.default_rng(s) for s in seeds]
