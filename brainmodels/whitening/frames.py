"""Fixed synaptic frames W (N x K, unit-norm columns) of the gain-modulating whitening circuit.

The circuit can whiten any covariance exactly when the outer products ``{w_i w_i^T}`` span the
N(N+1)/2-dimensional space of symmetric matrices (Duong et al. 2023, Sec. 3, Prop. 3.1):
``C_rr = I`` iff ``w_i^T C_rr w_i = 1`` for every i. That needs K >= N(N+1)/2.

References
----------
Duong, Lipshutz, Heeger, Chklovskii & Simoncelli (2023), "Adaptive whitening in neural
populations with gain-modulating interneurons", ICML, eqs. 2-4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from brainmodels._types import ArrayLike, PRNGKeyArray


def n_symmetric(n_neurons: int) -> int:
    """N(N+1)/2: the number of interneurons a frame needs to whiten N neurons fully."""
    return n_neurons * (n_neurons + 1) // 2


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def random_frame(n_neurons: int, n_interneurons: int | None = None, *, key: PRNGKeyArray,
                 dtype=None) -> jax.Array:
    """A random frame: K Gaussian directions in R^N, normalised to unit length.

    Parameters
    ----------
    n_neurons : int
        N, the number of primary neurons.
    n_interneurons : int, optional
        K, the number of interneurons (default N(N+1)/2, the fewest that whiten fully).
    key : jax PRNG key
    dtype : optional
        float32 by default (float64 when x64 is enabled and asked for).

    Returns
    -------
    W : jax.Array, shape (N, K), every column of norm 1.

    Examples
    --------
    >>> import jax
    >>> W = random_frame(3, key=jax.random.key(0))
    >>> W.shape
    (3, 6)
    """
    n = _positive_int(n_neurons, "n_neurons")
    k = n_symmetric(n) if n_interneurons is None else _positive_int(n_interneurons,
                                                                      "n_interneurons")
    w = jax.random.normal(key, (n, k), dtype=dtype or jnp.float32)
    return w / jnp.linalg.norm(w, axis=0, keepdims=True)


def mercedes_benz_frame(dtype=None) -> jax.Array:
    """The Mercedes-Benz frame: three unit vectors in R^2 at 120 degrees (N = 2, K = 3).

    The columns point at 90, 210 and 330 degrees; their outer products span the 2 x 2
    symmetric matrices, so the frame whitens any 2-D covariance.
    """
    angles = np.deg2rad([90.0, 210.0, 330.0])
    w = np.stack([np.cos(angles), np.sin(angles)])
    return jnp.asarray(w, dtype=dtype or jnp.float32)


def frame_rank(W: ArrayLike) -> int:
    """Dimension of the span of ``{w_i w_i^T}``: N(N+1)/2 when the frame can whiten fully.

    It is the rank of the K x K Gram matrix ``(W^T W) o (W^T W)`` (Hadamard square), since
    ``<w_i w_i^T, w_j w_j^T>_F = (w_i^T w_j)^2``.
    """
    w = np.asarray(W, dtype=np.float64)
    gram = w.T @ w
    return int(np.linalg.matrix_rank(gram * gram))


def check_frame(W: ArrayLike, *, name: str = "W") -> tuple[int, int]:
    """Validate a frame: a finite 2-D (neuron, interneuron) array of unit-norm columns."""
    shape = np.shape(W)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_neurons, n_interneurons), got shape {shape}")
    n, k = shape
    if n < 1 or k < 1:
        raise ValueError(f"{name} must have at least one neuron and one interneuron, got {shape}")
    w = np.asarray(W)
    if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
        raise ValueError(f"{name} must be a finite floating-point array")
    norms = np.linalg.norm(w.astype(np.float64), axis=0)
    tol = 1e-4 if w.dtype == np.float32 else 1e-10
    if np.any(np.abs(norms - 1) > tol):
        bad = np.flatnonzero(np.abs(norms - 1) > tol)[:5].tolist()
        raise ValueError(f"{name} must have unit-norm columns; columns {bad} have norms "
                         f"{np.round(norms[bad], 6).tolist()} (divide by their norms)")
    return n, k
