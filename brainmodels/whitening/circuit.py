"""The circuit's responses: steady state, recurrent dynamics and whitening error.

Primary neurons r (N) receive the input x and feedback from K interneurons with fixed weights W
(N x K); interneuron i sees z_i = w_i^T r and fires n_i = g_i z_i with an adaptive gain g_i
(Duong et al. 2023, eq. 6):

    tau dr/dt = x - W n - r,   n = g o (W^T r),

whose steady state is r = (I + W diag(g) W^T)^{-1} x (eq. 7). The dynamics are stable iff
M = I + W diag(g) W^T is positive definite (always so when g >= 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike
from brainmodels.data import provenance
from brainmodels.whitening.frames import check_frame


def working_dtype(*arrays) -> jnp.dtype:
    """float64 when x64 is enabled and any input is float64; float32 otherwise."""
    wide = any(np.asarray(a).dtype == np.float64 for a in arrays if a is not None)
    return jnp.dtype(jnp.float64 if wide and jax.config.jax_enable_x64 else jnp.float32)


def circuit_matrix(W, g):
    """M = I + W diag(g) W^T, the matrix whose inverse maps inputs to steady-state responses."""
    return jnp.eye(W.shape[0], dtype=W.dtype) + (W * g[None, :]) @ W.T


def output_covariance(W, g, C):
    """C_rr = M^{-1} C M^{-1}: the responses' covariance for inputs of covariance C."""
    m_inv = jnp.linalg.inv(circuit_matrix(W, g))
    return m_inv @ C @ m_inv.T


def _error(c_rr, kind: str):
    dev = c_rr - jnp.eye(c_rr.shape[0], dtype=c_rr.dtype)
    if kind == "operator":
        return jnp.max(jnp.abs(jnp.linalg.eigvalsh(dev)))
    return jnp.sqrt(jnp.sum(dev * dev))


ERRORS = ("operator", "frobenius")


def whitening_error(cov: ArrayLike, kind: str = "operator") -> float:
    """||C - I||: the operator (spectral) norm by default, or the Frobenius norm.

    The paper reports both (Duong et al. 2023, Sec. 6; a threshold of 0.1 on the operator norm).
    """
    if kind not in ERRORS:
        raise ValueError(f"kind must be one of {ERRORS}, got {kind!r}")
    c = np.asarray(cov)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be a square covariance matrix, got shape {c.shape}")
    return float(_error(jnp.asarray(c), kind))


def _check_inputs(W, gains, X, *, x_name="X"):
    n, k = check_frame(W)
    g = np.asarray(gains)
    if g.shape != (k,):
        raise ValueError(f"gains must have shape (n_interneurons,) = ({k},), got {g.shape}")
    x = X.values if isinstance(X, xr.DataArray) else np.asarray(X)
    if x.ndim != 2 or x.shape[1] != n:
        raise ValueError(f"{x_name} must be 2-D (sample, neuron) with {n} neurons (W has {n} "
                         f"rows), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{x_name} has non-finite values")
    return n, k, x


@jax.jit
def _respond(W, g, X):
    return jnp.linalg.solve(circuit_matrix(W, g), X.T).T


def respond(W: ArrayLike, gains: ArrayLike, X: ArrayLike) -> xr.DataArray:
    """Steady-state responses r = (I + W diag(g) W^T)^{-1} x for every sample (eq. 7).

    Parameters
    ----------
    W : (neuron, interneuron) frame; gains : (interneuron,); X : (sample, neuron).

    Returns
    -------
    xarray.DataArray (sample, neuron), float64 when X is float64 and x64 is enabled.

    Examples
    --------
    >>> import numpy as np
    >>> from brainmodels.whitening import mercedes_benz_frame, respond
    >>> respond(mercedes_benz_frame(), np.zeros(3), np.ones((4, 2))).shape
    (4, 2)
    """
    n, k, x = _check_inputs(W, gains, X)
    dt = working_dtype(x, W)
    r = _respond(jnp.asarray(W, dt), jnp.asarray(gains, dt), jnp.asarray(x, dt))
    return xr.DataArray(np.asarray(r), dims=("sample", "neuron"),
                        attrs=provenance("whitening.respond", units="a.u."))


def _dynamics(W, g, x, r0, dt, steps):
    def step(r, _):
        r = r + dt * (x - W @ (g * (W.T @ r)) - r)
        return r, r

    return jax.lax.scan(step, r0, None, length=steps)[1]


_dynamics_jit = jax.jit(_dynamics, static_argnames="steps")


def dynamics(W: ArrayLike, gains: ArrayLike, x: ArrayLike, *, dt: float = 0.05,
             steps: int = 400, r0: ArrayLike | None = None) -> xr.Dataset:
    """Integrate the recurrent circuit tau dr/dt = x - W (g o W^T r) - r (eq. 6, tau = 1).

    Forward Euler with step ``dt`` (in units of tau); it converges to :func:`respond`'s steady
    state when M = I + W diag(g) W^T is positive definite and dt < 2 / lambda_max(M).

    Returns
    -------
    xarray.Dataset with ``r (time, neuron)``, ``z (time, interneuron)`` (interneuron inputs
    W^T r) and ``steady_state (neuron)``.
    """
    if not dt > 0:
        raise ValueError(f"dt must be a positive time step (in units of tau), got {dt}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    xv = np.asarray(x)
    if xv.ndim != 1:
        raise ValueError(f"x must be one input vector (neuron,), got shape {xv.shape}")
    n, k, _ = _check_inputs(W, gains, xv[None], x_name="x")
    dtp = working_dtype(xv, W)
    w, g = jnp.asarray(W, dtp), jnp.asarray(gains, dtp)
    start = jnp.zeros(n, dtp) if r0 is None else jnp.asarray(r0, dtp)
    traj = _dynamics_jit(w, g, jnp.asarray(xv, dtp), start, jnp.asarray(dt, dtp), steps)
    time = dt * np.arange(1, steps + 1)
    return xr.Dataset(
        {"r": (("time", "neuron"), np.asarray(traj)),
         "z": (("time", "interneuron"), np.asarray(traj @ w)),
         "steady_state": ("neuron", np.asarray(_respond(w, g, jnp.asarray(xv, dtp)[None])[0]))},
        coords={"time": ("time", time, {"units": "tau"})},
        attrs=provenance("whitening.dynamics", params={"dt": dt, "steps": steps},
                         units="a.u.; time in units of the membrane time constant tau"))
