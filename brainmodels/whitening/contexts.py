"""Context switching: one circuit (fixed W) meets a sequence of input covariances."""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.data import provenance
from brainmodels.whitening.adaptation import adapt_many


def random_covariance(n_neurons: int, condition: float, *, key: PRNGKeyArray) -> np.ndarray:
    """A random rotation of the spectrum logspace(-c/2, c/2) (c = log10 condition): its
    eigenvalues straddle 1 with the given condition number. float64 (n, n)."""
    if not condition >= 1:
        raise ValueError(f"condition must be >= 1 (a condition number), got {condition}")
    g = np.asarray(jax.random.normal(key, (n_neurons, n_neurons), dtype=np.float32), np.float64)
    q, _ = np.linalg.qr(g)
    half = np.log10(condition) / 2
    return (q * np.logspace(-half, half, n_neurons)) @ q.T


def samples_to_threshold(error: xr.DataArray, threshold: float = 0.1) -> float:
    """Samples seen (``step``) when ``error`` first falls below ``threshold`` (NaN if never)."""
    below = np.flatnonzero(np.asarray(error) < threshold)
    return float(error.step[below[0]]) if len(below) else float("nan")


def switch_contexts(W: ArrayLike, covs: ArrayLike, *, n_samples: int, lr: float,
                    batch_size: int = 1, nonneg: bool = False, seeds=(0,),
                    n_records: int = 100, lr_decay: float = 0.0,
                    threshold: float = 0.1) -> xr.Dataset:
    """Adapt the gains through a sequence of contexts (covariances), every seed in one
    vmapped call per context; W is fixed and the gains carry over from context to context.

    Returns a Dataset with dims ``seed``, ``step`` (samples seen since the start, with a
    ``context`` coordinate), ``interneuron``, ``context`` and ``component``: ``error``,
    ``gains_trace``, ``min_eigenvalue``, ``gains (context, seed, interneuron)``,
    ``output_spectrum``/``input_spectrum (context, seed, component)`` and
    ``samples_to_threshold (context, seed)`` (samples into each context until the error is
    below ``threshold``).
    """
    covs = np.asarray(covs, np.float64)
    if covs.ndim != 3 or covs.shape[1] != covs.shape[2]:
        raise ValueError(f"covs must be (context, neuron, neuron), got shape {covs.shape}")
    n = covs.shape[1]
    seeds = [int(s) for s in seeds]
    parts, g = [], None
    for ci, c in enumerate(covs):
        chol = np.linalg.cholesky(c)
        xs = np.stack([np.asarray(jax.random.normal(
            jax.random.fold_in(jax.random.key(s), ci), (n_samples, n)), np.float64) @ chol.T
            for s in seeds])
        res = adapt_many(W, xs, lr=lr, batch_size=batch_size, nonneg=nonneg, g0=g, cov=c,
                         n_records=n_records, lr_decay=lr_decay)
        g = res.gains.values
        res = res.rename(circuit="seed").assign_coords(seed=seeds)
        res["samples_to_threshold"] = xr.DataArray(
            [samples_to_threshold(res.error.sel(seed=s), threshold) for s in seeds], dims="seed")
        parts.append(res.assign_coords(step=res.step + ci * n_samples,
                                       context=("step", np.full(res.sizes["step"], ci))))
    along_step = ["error", "gains_trace", "min_eigenvalue"]
    ds = xr.concat([p[along_step] for p in parts], dim="step")
    for name in ("gains", "output_spectrum", "input_spectrum", "samples_to_threshold"):
        ds[name] = xr.concat([p[name] for p in parts], dim="context")
        ds[name].attrs = parts[0][name].attrs
    ds["samples_to_threshold"].attrs = {"units": "samples", "threshold": threshold}
    ds.attrs = provenance("whitening.switch_contexts", params={
        "n_samples": n_samples, "lr": lr, "batch_size": batch_size, "nonneg": nonneg,
        "n_contexts": len(covs), "lr_decay": lr_decay, "threshold": threshold},
        seed=seeds[0], units="a.u.")
    ds.attrs["stable"] = all(p.attrs["stable"] for p in parts)
    return ds
