"""Parameters of the Kuramoto model and the checks on them."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax.numpy as jnp
import numpy as np

from brainmodels.data import to_numpy
from brainmodels.kuramoto import engine as _engine
from brainmodels.kuramoto.engine import EdgeList


@flax.struct.dataclass
class KuramotoParams:
    """Frozen parameters of the Kuramoto(-Sakaguchi) model.

    Parameters
    ----------
    coupling : float
        Coupling strength ``K``.
    omega : array (oscillator,)
        Natural frequencies (rad per time unit); ``None`` only as the base of
        :func:`~brainmodels.kuramoto.sweep`, which then draws them.
    adjacency : None, array (oscillator, oscillator), BCOO, scipy.sparse or EdgeList
        ``None``: all-to-all with ``A_ij = 1/N`` (mean field, O(N)). Otherwise ``A[i, j]`` is
        the weight of the input from ``j`` to ``i`` (not normalised).
    lag : float
        Sakaguchi phase lag ``alpha`` (rad).
    noise : float
        Noise intensity ``D >= 0``: ``<xi_i(t) xi_j(s)> = 2 D delta_ij delta(t - s)``
        (needs ``key=`` in :func:`simulate`).
    forcing, forcing_frequency, forcing_phase : float
        External drive ``F sin(Omega t + phi - theta_i)``.
    """

    coupling: Any
    omega: Any
    adjacency: Any = None
    lag: Any = 0.0
    noise: Any = 0.0
    forcing: Any = 0.0
    forcing_frequency: Any = 0.0
    forcing_phase: Any = 0.0


_SCALARS = ("coupling", "lag", "noise", "forcing", "forcing_frequency", "forcing_phase")


# ----------------------------------------------------------------------------- validation


def _float_dtype(*arrays) -> Any:
    default = jnp.zeros(()).dtype  # float32, or float64 under jax.enable_x64
    if any(np.asarray(a).dtype == np.float64 for a in arrays) and default == jnp.float64:
        return jnp.float64
    return default


def _check_finite(values: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(values)):
        bad = np.flatnonzero(~np.isfinite(values))[:5].tolist()
        raise ValueError(f"{name} must be finite; it has non-finite values at indices {bad}")


def _prepare_adjacency(adjacency, n: int, dtype):
    if adjacency is None:
        return None
    if isinstance(adjacency, EdgeList):
        if adjacency.n != n:
            raise ValueError(f"adjacency EdgeList has n={adjacency.n}, expected {n} oscillators")
        return adjacency.replace(weight=jnp.asarray(adjacency.weight, dtype))
    if isinstance(adjacency, _engine.jsparse.BCOO):
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {adjacency.shape}")
        return adjacency.astype(dtype)
    if hasattr(adjacency, "tocoo"):  # scipy.sparse
        if adjacency.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}), got {adjacency.shape}")
        return edge_list(adjacency, dtype=dtype)
    values = to_numpy(adjacency, name="adjacency")
    if values.shape != (n, n):
        raise ValueError(f"adjacency must have shape ({n}, {n}), got {values.shape}")
    _check_finite(values.ravel(), "adjacency")
    return jnp.asarray(values, dtype)


def edge_list(adjacency, *, dtype=None) -> EdgeList:
    """Convert a dense array or scipy.sparse matrix (row = receiving oscillator) to an EdgeList."""
    import scipy.sparse as sp

    coo = sp.coo_matrix(adjacency)
    if coo.shape[0] != coo.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {coo.shape}")
    dtype = dtype or jnp.zeros(()).dtype
    return EdgeList(source=jnp.asarray(coo.col, jnp.int32), target=jnp.asarray(coo.row, jnp.int32),
                    weight=jnp.asarray(coo.data, dtype), n=int(coo.shape[0]))


def _prepare(params: KuramotoParams, n: int, dtype) -> KuramotoParams:
    omega = to_numpy(params.omega, name="omega")
    if omega.shape != (n,):
        raise ValueError(f"omega must have shape ({n},) like theta0, got {omega.shape}")
    _check_finite(omega, "omega")
    fields = {}
    for name in _SCALARS:
        value = np.asarray(getattr(params, name), dtype=float)
        if value.shape != () or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite scalar, got {getattr(params, name)!r}")
        fields[name] = jnp.asarray(value, dtype)
    if float(fields["noise"]) < 0:
        raise ValueError(f"noise must be >= 0 (an intensity D), got {float(fields['noise'])}")
    return KuramotoParams(omega=jnp.asarray(omega, dtype),
                          adjacency=_prepare_adjacency(params.adjacency, n, dtype), **fields)


def _check_run(dt, steps, record_every, method) -> None:
    if method not in _engine.INTEGRATORS:
        raise ValueError(f"method must be one of {sorted(_engine.INTEGRATORS)}, got {method!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite time step, got {dt!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if int(record_every) != record_every or record_every < 1 or steps % record_every:
        raise ValueError(
            f"record_every must be a positive integer dividing steps={steps}, got {record_every!r}"
        )
