"""Gain adaptation: online (sample by sample or mini-batches), offline, closed form, g >= 0.

Online rule (Duong et al. 2023, Alg. 1): with steady-state responses r = M^{-1} x and
z = W^T r,

    g <- g + lr * mean_batch(z o z - 1),            (projected onto g >= 0 when nonneg)

a stochastic gradient step that drives every interneuron's marginal variance to 1. Offline, the
batch mean is replaced by its expectation diag(W^T C_rr W) with C_rr = M^{-1} C M^{-1}. The
fixed point (for a frame spanning the symmetric matrices) is M = C^{1/2}, i.e. the responses are
ZCA-whitened, r = C^{-1/2} x, and the gains are (eq. 9)

    g* = (W^T W o W^T W)^{-1} diag(W^T (C^{1/2} - I) W).

The error trace is ||C_rr - I|| (operator norm) against the input's covariance: ``cov`` when
given, else the second-moment matrix X^T X / n of the samples (inputs are taken as zero-mean,
as in the paper).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.data import provenance
from brainmodels.whitening.circuit import _error, circuit_matrix, working_dtype
from brainmodels.whitening.frames import check_frame, n_symmetric

# ----------------------------------------------------------------------------- validation

def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, int | float | np.floating) or not lr > 0 \
            or not np.isfinite(lr):
        raise ValueError(f"lr must be a positive, finite learning rate, got {lr!r}")
    return float(lr)


def _check_decay(decay) -> None:
    if isinstance(decay, bool) or not isinstance(decay, int | float) or not decay >= 0 \
            or not np.isfinite(decay):
        raise ValueError(f"lr_decay must be a finite number >= 0, got {decay!r}")


def _check_k(n: int, k: int, full: bool) -> None:
    need = n_symmetric(n)
    if full and k < need:
        raise ValueError(
            f"W has {k} interneurons; full whitening of {n} neurons needs K >= N(N+1)/2 = {need} "
            "(random_frame(n, n*(n+1)//2, key=...)); pass full=False to adapt a frame that "
            "whitens only partly (e.g. a local frame)")


def _check_samples(X, n: int, name: str = "X") -> np.ndarray:
    x = X.values if isinstance(X, xr.DataArray) else np.asarray(X)
    if x.ndim != 2 or x.shape[-1] != n:
        raise ValueError(f"{name} must be 2-D (sample, neuron) with {n} neurons (W has {n} "
                         f"rows), got shape {x.shape}")
    if x.shape[0] < 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must hold at least one sample and only finite values")
    return x


def _check_cov(cov, n: int, name: str = "cov") -> np.ndarray:
    c = np.asarray(cov.values if isinstance(cov, xr.DataArray) else cov)
    if c.shape != (n, n):
        raise ValueError(f"{name} must be an ({n}, {n}) covariance matrix, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or not np.allclose(c, c.T, rtol=1e-6, atol=1e-8 * np.abs(c).max()):
        raise ValueError(f"{name} must be a finite symmetric matrix")
    if np.linalg.eigvalsh(c.astype(np.float64))[0] <= 0:
        raise ValueError(f"{name} must be positive definite")
    return c


def _check_gains(g0, k: int, nonneg: bool) -> np.ndarray | None:
    if g0 is None:
        return None
    g = np.asarray(g0.values if isinstance(g0, xr.DataArray) else g0)
    if g.shape != (k,) or not np.all(np.isfinite(g)):
        raise ValueError(f"g0 must be finite with shape ({k},), got shape {g.shape}")
    if nonneg and np.any(g < 0):
        raise ValueError("g0 must be >= 0 when nonneg=True")
    return g


# ----------------------------------------------------------------------------- engines

def _record(W, g, C):
    m = circuit_matrix(W, g)
    m_inv = jnp.linalg.inv(m)
    return g, _error(m_inv @ C @ m_inv.T, "operator"), jnp.linalg.eigvalsh(m)[0]


def _online(W, batches, mask, C, g0, lr, decay, nonneg):
    """batches (record, every, batch, neuron); mask (record, every) marks real steps."""
    def step(carry, inp):
        g, t, low = carry
        xb, m = inp
        mat = circuit_matrix(W, g)
        # M's smallest eigenvalue at every update, not only at the records: a dip below 0
        # between two records is an unstable circuit all the same
        low = jnp.minimum(low, jnp.linalg.eigvalsh(mat)[0])
        r = jnp.linalg.solve(mat, xb.T)
        z = W.T @ r
        g = g + (m * lr / (1 + decay * t)) * jnp.mean(z * z - 1, axis=1)
        return ((jnp.maximum(g, 0) if nonneg else g), t + m, low), None

    def block(carry, inp):
        g, t, _ = carry
        g, t, low = jax.lax.scan(step, (g, t, jnp.asarray(jnp.inf, g.dtype)), inp)[0]
        g_rec, err, eig = _record(W, g, C)
        return (g, t, low), (g_rec, err, jnp.minimum(low, eig))

    zero = jnp.zeros((), g0.dtype)
    (g, _, _), trace = jax.lax.scan(block, (g0, zero, zero), (batches, mask))
    return g, trace


def _offline(W, C, g0, lr, nonneg, every, n_records):
    def step(carry, _):
        g, low = carry
        mat = circuit_matrix(W, g)
        low = jnp.minimum(low, jnp.linalg.eigvalsh(mat)[0])  # every iteration, as online
        m_inv = jnp.linalg.inv(mat)
        c_rr = m_inv @ C @ m_inv.T
        g = g + lr * (jnp.sum(W * (c_rr @ W), axis=0) - 1)
        return ((jnp.maximum(g, 0) if nonneg else g), low), None

    def block(g, _):
        g, low = jax.lax.scan(step, (g, jnp.asarray(jnp.inf, g.dtype)), None, length=every)[0]
        g_rec, err, eig = _record(W, g, C)
        return g, (g_rec, err, jnp.minimum(low, eig))

    return jax.lax.scan(block, g0, None, length=n_records)


_online_jit = jax.jit(_online, static_argnames="nonneg")
_online_many = jax.jit(jax.vmap(_online, in_axes=(None, 0, None, 0, 0, None, None, None)),
                       static_argnames="nonneg")
_offline_jit = jax.jit(_offline, static_argnames=("nonneg", "every", "n_records"))


def _steps_layout(n_steps: int, n_records: int) -> tuple[int, int]:
    n_records = max(1, min(n_records, n_steps))
    every = -(-n_steps // n_records)
    return -(-n_steps // every), every


def _batches(x, batch_size: int, n_records: int, order):
    """(..., sample, neuron) -> (..., record, every, batch, neuron) plus the real-step mask."""
    n_steps = x.shape[-2] // batch_size
    if n_steps < 1:
        raise ValueError(f"batch_size = {batch_size} exceeds the {x.shape[-2]} samples")
    n_rec, every = _steps_layout(n_steps, n_records)
    pad = n_rec * every - n_steps
    if order is not None:
        x = x[..., order, :]
    x = x[..., : n_steps * batch_size, :]
    x = x.reshape(*x.shape[:-2], n_steps, batch_size, x.shape[-1])
    x = np.concatenate([x, np.zeros((*x.shape[:-3], pad, *x.shape[-2:]), x.dtype)], axis=-3)
    mask = np.concatenate([np.ones(n_steps), np.zeros(pad)])
    return (x.reshape(*x.shape[:-3], n_rec, every, *x.shape[-2:]), mask.reshape(n_rec, every),
            every)


def _dataset(W, g_final, trace, C, every, per_step, *, model, params, seed, nonneg):
    g_hist, err, min_eig = (np.asarray(a) for a in trace)
    lead = g_hist.shape[:-2]
    dims = ("circuit",) * len(lead)
    steps = every * np.arange(1, g_hist.shape[-2] + 1) * per_step
    c_rr = _out_cov(W, g_final, C)
    ds = xr.Dataset(
        {"gains": ((*dims, "interneuron"), np.asarray(g_final),
                   {"description": "adapted interneuron gains g"}),
         "gains_trace": ((*dims, "step", "interneuron"), g_hist),
         "error": ((*dims, "step"), err,
                   {"description": "||C_rr - I||, operator norm, C_rr = M^-1 C M^-1"}),
         "min_eigenvalue": ((*dims, "step"), min_eig,
                            {"description": "smallest eigenvalue of M = I + W diag(g) W^T, the "
                                            "minimum over the updates since the previous "
                                            "record; the recurrent dynamics are stable iff it "
                                            "is > 0"}),
         "output_spectrum": ((*dims, "component"), np.linalg.eigvalsh(c_rr)[..., ::-1],
                             {"description": "eigenvalues of C_rr, descending"}),
         "input_spectrum": ((*dims, "component"), np.linalg.eigvalsh(np.asarray(C))[..., ::-1],
                            {"description": "eigenvalues of the input covariance, descending"})},
        coords={"step": ("step", steps, {"units": "samples" if per_step > 0 else "iterations"})},
        attrs=provenance(model, params={**params, "nonneg": nonneg}, seed=seed, units="a.u."))
    if not np.all(np.isfinite(g_hist)) or not np.all(np.isfinite(err)):
        first = int(np.argmax(~np.isfinite(err).reshape(-1, err.shape[-1]).all(0)))
        warnings.warn(f"{model}: the gains diverged (non-finite by step {int(steps[first])}); "
                      "lower lr or pass nonneg=True", RuntimeWarning, stacklevel=3)
    ds.attrs["stable"] = bool(np.all(min_eig > 0))
    if not ds.attrs["stable"]:
        warnings.warn(f"{model}: M = I + W diag(g) W^T lost positive definiteness (smallest "
                      f"eigenvalue {float(np.nanmin(min_eig)):.3g}): the recurrent circuit is "
                      "unstable; lower lr or pass nonneg=True", RuntimeWarning, stacklevel=3)
    return ds


def _out_cov(W, g, C) -> np.ndarray:
    """C_rr for every circuit (leading dims of g and C), on the host."""
    w, g = np.asarray(W, np.float64), np.asarray(g, np.float64)
    m = np.eye(w.shape[0]) + np.einsum("nk,...k,mk->...nm", w, g, w)
    m_inv = np.linalg.inv(m)
    return m_inv @ np.asarray(C, np.float64) @ np.swapaxes(m_inv, -1, -2)


def _prepare(W, X, lr, batch_size, nonneg, g0, cov, full):
    n, k = check_frame(W)
    _check_k(n, k, full)
    lr = _check_lr(lr)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    g0 = _check_gains(g0, k, nonneg)
    cov = None if cov is None else _check_cov(cov, n)
    return n, k, lr, g0, cov


def adapt(W: ArrayLike, X: ArrayLike, *, lr: float, batch_size: int = 1, nonneg: bool = False,
          key: PRNGKeyArray | None = None, g0: ArrayLike | None = None,
          cov: ArrayLike | None = None, n_records: int = 100, full: bool = True,
          lr_decay: float = 0.0) -> xr.Dataset:
    """Adapt the gains online to samples X (one jitted ``lax.scan``; mini-batches inside it).

    Parameters
    ----------
    W : (neuron, interneuron) frame with unit-norm columns (fixed).
    X : (sample, neuron) inputs, taken as zero-mean; float64 input runs in float64 when x64 is
        enabled, anything else in float32.
    lr : float > 0
        Learning rate of g <- g + lr_t * mean_batch(z o z - 1).
    lr_decay : float >= 0
        lr_t = lr / (1 + lr_decay * t) at update t (Robbins-Monro); 0 keeps lr constant, whose
        stochastic fluctuations leave an error floor that grows with lr / batch_size.
    batch_size : int
        Samples per update (1: sample by sample); a trailing partial batch is dropped.
    nonneg : bool
        Project the gains onto g >= 0 after every update.
    key : PRNG key, optional
        Shuffle the samples with it; None keeps the data's order (context switches).
    g0 : (interneuron,), optional
        Initial gains (default 0); pass a previous result's ``gains`` to continue.
    cov : (neuron, neuron), optional
        The input covariance the error is measured against (default X^T X / n).
    n_records : int
        Error, gains and the smallest eigenvalue of M are recorded this many times.
    full : bool
        Require K >= N(N+1)/2 (full whitening); False for partial or local frames.

    Returns
    -------
    xarray.Dataset: ``gains (interneuron)``, ``gains_trace (step, interneuron)``,
    ``error (step)``, ``min_eigenvalue (step)``, ``output_spectrum`` and ``input_spectrum``
    (component); ``step`` counts samples seen; attrs: parameters, seed, version, ``stable``.

    Raises
    ------
    ValueError
        K < N(N+1)/2 with ``full=True``, a non-positive lr, X of the wrong shape.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from brainmodels import whitening
    >>> W = whitening.mercedes_benz_frame()
    >>> X = np.random.default_rng(0).normal(size=(2000, 2)) * [2.0, 0.5]
    >>> res = whitening.adapt(W, X, lr=0.02, batch_size=10)
    >>> bool(res.error[-1] < res.error[0])
    True
    """
    n, k, lr, g0, cov = _prepare(W, X, lr, batch_size, nonneg, g0, cov, full)
    _check_decay(lr_decay)
    x = _check_samples(X, n)
    dt = working_dtype(x, W)
    order = None if key is None else np.asarray(jax.random.permutation(key, x.shape[0]))
    batches, mask, every = _batches(x.astype(dt), batch_size, n_records, order)
    c = x.T.astype(np.float64) @ x / x.shape[0] if cov is None else cov
    w, c = jnp.asarray(W, dt), jnp.asarray(c, dt)
    g_init = jnp.zeros(k, dt) if g0 is None else jnp.asarray(g0, dt)
    g, trace = _online_jit(w, jnp.asarray(batches), jnp.asarray(mask, dt), c, g_init,
                           jnp.asarray(lr, dt), jnp.asarray(lr_decay, dt), nonneg)
    return _dataset(w, g, trace, c, every, batch_size, model="whitening.adapt",
                    params={"lr": lr, "lr_decay": lr_decay, "batch_size": batch_size,
                            "n_samples": x.shape[0]},
                    seed=None, nonneg=nonneg)


def adapt_many(W: ArrayLike, X: ArrayLike, *, lr: float, batch_size: int = 1,
               nonneg: bool = False, g0: ArrayLike | None = None, cov: ArrayLike | None = None,
               n_records: int = 100, full: bool = True, lr_decay: float = 0.0) -> xr.Dataset:
    """:func:`adapt` for many circuits at once (contexts, seeds): one ``vmap``-ed call.

    X is (circuit, sample, neuron); ``g0`` (circuit, interneuron) or (interneuron,); ``cov``
    (circuit, neuron, neuron) or None (each circuit's second moments). W and lr are shared.
    The result has a leading ``circuit`` dim.
    """
    n, k = check_frame(W)
    xs = np.asarray(X.values if isinstance(X, xr.DataArray) else X)
    if xs.ndim != 3 or xs.shape[-1] != n:
        raise ValueError(f"X must be 3-D (circuit, sample, neuron) with {n} neurons, got shape "
                         f"{xs.shape}")
    n_c = xs.shape[0]
    _check_decay(lr_decay)
    g_in = None if g0 is None else np.broadcast_to(np.asarray(g0), (n_c, k))
    covs = None if cov is None else np.broadcast_to(np.asarray(cov), (n_c, n, n))
    for i in range(n_c):
        _prepare(W, xs[i], lr, batch_size, nonneg, None if g_in is None else g_in[i],
                 None if covs is None else covs[i], full)
        _check_samples(xs[i], n, f"X[{i}]")
    dt = working_dtype(xs, W)
    batches, mask, every = _batches(xs.astype(dt), batch_size, n_records, None)
    c = np.einsum("csi,csj->cij", xs.astype(np.float64), xs) / xs.shape[1] if covs is None \
        else covs
    w = jnp.asarray(W, dt)
    g_init = jnp.zeros((n_c, k), dt) if g_in is None else jnp.asarray(g_in, dt)
    g, trace = _online_many(w, jnp.asarray(batches), jnp.asarray(mask, dt), jnp.asarray(c, dt),
                            g_init, jnp.asarray(float(lr), dt), jnp.asarray(lr_decay, dt), nonneg)
    return _dataset(w, g, trace, jnp.asarray(c, dt), every, batch_size,
                    model="whitening.adapt_many",
                    params={"lr": float(lr), "lr_decay": lr_decay, "batch_size": batch_size,
                            "n_samples": xs.shape[1]},
                    seed=None, nonneg=nonneg)


def adapt_offline(W: ArrayLike, cov: ArrayLike, *, lr: float, steps: int = 1000,
                  nonneg: bool = False, g0: ArrayLike | None = None, n_records: int = 100,
                  full: bool = True) -> xr.Dataset:
    """Adapt the gains from the population covariance: g <- g + lr (diag(W^T C_rr W) - 1).

    The expectation of the online update (Duong et al. 2023, Sec. 4); deterministic, so it
    converges to :func:`optimal_gains` (for a spanning frame and a small enough lr).
    Returns the same Dataset as :func:`adapt`, with ``step`` counting iterations.
    """
    n, k = check_frame(W)
    _check_k(n, k, full)
    lr = _check_lr(lr)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    c = _check_cov(cov, n)
    g0 = _check_gains(g0, k, nonneg)
    dt = working_dtype(c, W)
    n_rec, every = _steps_layout(steps, n_records)
    w, cj = jnp.asarray(W, dt), jnp.asarray(c, dt)
    g_init = jnp.zeros(k, dt) if g0 is None else jnp.asarray(g0, dt)
    g, trace = _offline_jit(w, cj, g_init, jnp.asarray(lr, dt), nonneg, every, n_rec)
    ds = _dataset(w, g, trace, cj, every, 1, model="whitening.adapt_offline",
                  params={"lr": lr, "steps": n_rec * every}, seed=None, nonneg=nonneg)
    ds["step"].attrs["units"] = "iterations"
    return ds


def optimal_gains(W: ArrayLike, cov: ArrayLike) -> np.ndarray:
    """The closed-form optimum g* = (W^T W o W^T W)^+ diag(W^T (C^{1/2} - I) W) (eq. 9).

    Solved in float64 on the host; with K > N(N+1)/2 the Gram matrix is singular and the
    minimum-norm solution (pseudo-inverse) is returned. It makes I + W diag(g*) W^T = C^{1/2}
    exactly when the frame spans the symmetric matrices.
    """
    n, k = check_frame(W)
    _check_k(n, k, True)
    c = _check_cov(cov, n).astype(np.float64)
    w = np.asarray(W, dtype=np.float64)
    lam, u = np.linalg.eigh(c)
    sqrt_c = (u * np.sqrt(lam)) @ u.T
    gram = w.T @ w
    rhs = np.sum(w * ((sqrt_c - np.eye(n)) @ w), axis=0)
    return np.linalg.lstsq(gram * gram, rhs, rcond=None)[0]
