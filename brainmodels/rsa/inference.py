"""Inference for RDM comparisons: bootstrap, permutation tests, noise ceilings, tidy tables.

The bootstrap is vectorised: resampling conditions with replacement is the same as weighting
each pair (i, j) of the original RDM by c_i c_j, where c counts how often each condition was
drawn (pairs of a condition with its own copy are dropped, as rsatoolbox does). All samples are
evaluated at once with ``vmap`` over the weight vectors; the whitened methods re-centre each
sample by least squares in closed form, and tau-a counts weighted inversions on the host
(numba), so every comparison method resamples stimuli.

References
----------
Nili et al. (2014), PLoS Comput. Biol. 10(4): e1003553 (noise ceiling: lower bound from
leave-one-subject-out, upper bound from the mean of all subjects).
Schütt et al. (2023), "Statistical inference on representational geometries", eLife
12:e82566 (bootstrap over stimuli and subjects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.stats
import xarray as xr
from jax import lax

from brainmodels._memory import check_memory
from brainmodels._random import host_generators
from brainmodels._types import ArrayLike, PRNGKeyArray
from brainmodels.data import provenance
from brainmodels.rsa import _small
from brainmodels.rsa._backend import default_float, on_host
from brainmodels.rsa._kendall import tau_a_resampled
from brainmodels.rsa._utils import n_cond_from_pairs, rdm_vectors
from brainmodels.rsa._weighted import WEIGHTED
from brainmodels.rsa.compare import COMPARE_METHODS, _rank_rows
from brainmodels.rsa.methods import COMPARISONS

__all__ = [
    "bootstrap_compare",
    "permutation_test",
    "noise_ceiling",
    "model_comparison_table",
    "pool_rdms",
    "BOOTSTRAP_METHODS",
]


#: methods with a JAX weighted form for resampled stimuli (tau-a's runs on the host, in
#: :func:`bootstrap_compare`): see :mod:`brainmodels.rsa._weighted`
BOOTSTRAP_METHODS: dict[str, Callable] = dict(WEIGHTED)


def _boot_core(models, data, cond_counts, method: str):
    """(sample, model, subject) comparisons for each row of condition counts."""
    fn = BOOTSTRAP_METHODS[method]

    def one(counts):
        return fn(models, data, counts[None])[0]  # (model, subject)

    # lax.map with batch_size vmaps `one` over blocks of samples: bounded memory
    return lax.map(one, cond_counts, batch_size=min(128, cond_counts.shape[0]))


_boot_jit = jax.jit(_boot_core, static_argnums=3)


def _dual_variance(v_both, v_subj, v_stim, n_subj: int, n_cond: int):
    """Variance of an evaluation over random subjects and stimuli from the two-factor
    bootstrap and the two one-factor bootstraps on the same draws (Schütt et al. 2023, eLife
    12:e82566; rsatoolbox's ``_dual_bootstrap``): resampling both factors counts the
    interaction twice, so the naive two-factor variance is too large; the small-sample
    correction removes one copy and is clipped to [the larger one-factor variance, the
    two-factor variance]."""
    a, b = n_subj / (n_subj - 1), n_cond / (n_cond - 1)
    var = a * v_subj + b * v_stim - a * b * (v_both - v_subj - v_stim)
    return np.minimum(np.maximum(np.maximum(var, a * v_subj), b * v_stim), v_both)


def _counts(rng: np.random.Generator, n: int, n_samples: int) -> np.ndarray:
    """(sample, n) how often each of n units is drawn in n draws with replacement."""
    idx = rng.integers(0, n, (n_samples, n)) + n * np.arange(n_samples)[:, None]
    return np.bincount(idx.ravel(), minlength=n * n_samples).reshape(n_samples, n).astype(float)


def _group_index(groups, k: int) -> np.ndarray:
    """Group index (0..G-1) of each condition; every condition its own group by default."""
    if groups is None:
        return np.arange(k)
    labels = np.asarray(groups)
    if labels.shape != (k,):
        raise ValueError(f"groups must hold one label per condition ({k}), got shape "
                         f"{labels.shape}")
    _, index = np.unique(labels, return_inverse=True)
    if index.max() < 1:
        raise ValueError("groups must hold at least 2 distinct labels to resample")
    return index.astype(np.int64)


def _names(info, default_prefix: str, n: int) -> list[str]:
    _, dims, coords = info
    if dims and dims[0] in coords:
        return [str(v) for v in coords[dims[0]]]
    return [f"{default_prefix}{k}" for k in range(n)]


def bootstrap_compare(
    models: ArrayLike,
    data: ArrayLike,
    method: str = "corr",
    *,
    key: PRNGKeyArray,
    n_bootstrap: int = 1000,
    over: str = "stimulus",
    ci: float = 0.95,
    model_names: list[str] | None = None,
    with_noise_ceiling: bool = True,
    groups: ArrayLike | None = None,
) -> xr.Dataset:
    """Evaluate model RDMs against data RDMs with bootstrap confidence intervals.

    Parameters
    ----------
    models : array-like or DataArray, shape (model, K, K) or (model, pairs)
        Model RDMs (a DataArray's first dim coord names them).
    data : array-like or DataArray, shape (subject, K, K), (K, K) or condensed
        Data RDMs; a model's evaluation is its mean comparison over subjects.
    method : str
        Any of :data:`~brainmodels.rsa.COMPARE_METHODS`. Resampled stimuli are weighted
        comparisons over the original pairs, vectorised over samples
        (:data:`BOOTSTRAP_METHODS`; tau-a by weighted inversion counts on the host).
    key : jax PRNG key
        Randomness of the resampling (explicit, keyword-only).
    n_bootstrap : int
        Number of bootstrap samples (default 1000).
    over : {"stimulus", "subject", "both"}
        Resample conditions (pairs of copies of the same condition are dropped), subjects,
        or both.
    ci : float
        Coverage of the percentile confidence interval.
    with_noise_ceiling : bool
        Add the lower/upper noise ceiling (needs >= 2 subjects).
    groups : array-like, shape (K,), optional
        A label per condition: resampling stimuli draws whole groups (e.g. the images of one
        object, or one category), as rsatoolbox's ``pattern_descriptor``. Default: every
        condition on its own.

    Returns
    -------
    xarray.Dataset
        ``evaluation (model)``, ``samples (bootstrap, model)``, ``se (model)``,
        ``se_uncorrected (model)``, ``ci_low (model)``, ``ci_high (model)`` and, if
        available, ``noise_ceiling_lower``, ``noise_ceiling_upper``; provenance attrs.
        One factor: ``se`` is the samples' SD and the CI their percentiles. ``over="both"``:
        resampling subjects and stimuli together counts their interaction twice, so ``se``
        is the corrected dual-bootstrap SE of Schütt et al. (2023), from the one-factor
        bootstraps of the same draws (``se_uncorrected``: the samples' SD), and the CI is
        the t interval with min(subjects, conditions) - 1 degrees of freedom, as
        rsatoolbox's ``eval_dual_bootstrap``. :func:`model_comparison_table` turns it into a
        table.

    Raises
    ------
    ValueError
        Unknown method/over; RDMs of different sizes; fewer than 2 subjects for a subject
        bootstrap; n_bootstrap < 2.
    """
    if over not in ("stimulus", "subject", "both"):
        raise ValueError(f"over must be 'stimulus', 'subject' or 'both', got {over!r}")
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {sorted(COMPARE_METHODS)}, got {method!r}")
    if over != "subject" and not COMPARISONS[method].bootstrap:
        raise ValueError(f"method {method!r} has no form for resampled stimuli; bootstrap it "
                         f"with over='subject', or use one of "
                         f"{sorted(n for n, c in COMPARISONS.items() if c.bootstrap)}")
    if n_bootstrap < 2 or not 0 < ci < 1:
        raise ValueError(f"need n_bootstrap >= 2 and 0 < ci < 1, got {n_bootstrap}, {ci}")
    vm, *m_info = rdm_vectors(models, name="models")
    vd, *d_info = rdm_vectors(data, name="data")
    if vm.shape[1] != vd.shape[1]:
        raise ValueError(f"models and data must be RDMs of the same conditions: models have "
                         f"{n_cond_from_pairs(vm.shape[1])}, data {n_cond_from_pairs(vd.shape[1])}")
    n_subj, k = vd.shape[0], n_cond_from_pairs(vm.shape[1])
    if over in ("subject", "both") and n_subj < 2:
        raise ValueError(f"a subject bootstrap needs >= 2 data RDMs, got {n_subj}")
    # draws (sample, condition) and comparisons (sample, model, subject), with host copies
    check_memory(8.0 * n_bootstrap * (2 * k + 2 * n_subj + 3 * vm.shape[0] * n_subj),
                 what=f"a bootstrap of {n_bootstrap} samples ({vm.shape[0]} models, {n_subj} "
                      f"data RDMs, {k} conditions)",
                 knob="lower n_bootstrap (1000-10000 samples give stable intervals), or "
                      "compare fewer models per call")
    dtype = default_float()
    group_of = _group_index(groups, k)
    n_units = int(group_of.max()) + 1  # resampled units: conditions or groups
    # the draws are small: numpy's generator seeded from the key (same key, same draws on
    # every backend; no compilation)
    rng_c, rng_s = host_generators(key, 2)
    # a condition is drawn as often as its group; pair (i, j) then weighs c_i c_j, and pairs
    # of a condition with its own copy drop out, as with rsatoolbox's grouped subsampling
    cond = _counts(rng_c, n_units, n_bootstrap)[:, group_of] if over != "subject" else None
    subj = _counts(rng_s, n_subj, n_bootstrap) if over != "stimulus" else \
        np.ones((n_bootstrap, n_subj))
    if over == "subject":
        sims = np.asarray(COMPARE_METHODS[method](vm.astype(dtype), vd.astype(dtype),
                                                  np.ones(k, dtype)))[None]
        # row 0 (all weights 1, the point estimate) is evaluated with the samples
    elif method == "tau-a":  # weighted inversion counts on the host (numba)
        sims = tau_a_resampled(vm, vd, np.concatenate([np.ones((1, k)), cond]))
    elif method in _small.WEIGHTED and on_host(vm, vd):  # numpy / BLAS on CPU
        sims = _small.WEIGHTED[method](vm.astype(np.float64), vd.astype(np.float64),
                                       np.concatenate([np.ones((1, k)), cond])).astype(dtype)
    else:
        a, b = jnp.asarray(vm, dtype), jnp.asarray(vd, dtype)
        sims = np.asarray(_boot_jit(a, b, jnp.concatenate([jnp.ones((1, k), dtype),
                                                           jnp.asarray(cond, dtype)]), method))
    sims = sims.astype(np.float64)  # (1 + sample or 1, model, subject)
    w_subj = np.asarray(subj, np.float64)
    point = sims[0].mean(axis=1)
    by_subject = w_subj @ sims[0].T / w_subj.sum(axis=1, keepdims=True)  # (sample, model)
    by_stimulus = sims[1:].mean(axis=2)  # (sample, model); empty when over == "subject"
    if over == "subject":
        samples = by_subject
    elif over == "stimulus":
        samples = by_stimulus
    else:
        samples = np.einsum("bms,bs->bm", sims[1:], w_subj) / w_subj.sum(axis=1)[:, None]
    names = model_names or _names(m_info, "model", vm.shape[0])
    se_naive = np.nanstd(samples, axis=0, ddof=1)
    if over == "both":
        # the two one-factor bootstraps of the same draws correct the two-factor variance;
        # the interval is then the t interval of rsatoolbox's dual bootstrap
        var = _dual_variance(se_naive**2, np.nanvar(by_subject, axis=0, ddof=1),
                             np.nanvar(by_stimulus, axis=0, ddof=1), n_subj, n_units)
        se = np.sqrt(var)
        half = scipy.stats.t.ppf((1 + ci) / 2, min(n_subj, n_units) - 1) * se
        lo, hi = point - half, point + half
    else:
        se = se_naive
        lo, hi = np.nanquantile(samples, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    ds = xr.Dataset(
        {
            "evaluation": ("model", point.astype(dtype)),
            "samples": (("bootstrap", "model"), samples.astype(dtype)),
            "se": ("model", se),
            "se_uncorrected": ("model", se_naive),
            "ci_low": ("model", lo),
            "ci_high": ("model", hi),
        },
        coords={"model": names},
        attrs=provenance("bootstrap_compare", params={
            "method": method, "n_bootstrap": n_bootstrap, "over": over, "ci": ci,
            "dof": min(n_subj, n_units) - 1, "n_groups": n_units}, units="similarity"),
    )
    if with_noise_ceiling and n_subj >= 2:
        lower, upper = noise_ceiling(vd, method)
        ds["noise_ceiling_lower"], ds["noise_ceiling_upper"] = lower, upper
    return ds


# ----------------------------------------------------------------------------- noise ceiling


def _scale_rows(v):
    return v / jnp.sqrt(jnp.mean(v**2, axis=1, keepdims=True))


def _z_rows(v):
    return (v - v.mean(axis=1, keepdims=True)) / v.std(axis=1, keepdims=True)


def _shift_min(m):
    return m - jnp.min(m, axis=-1, keepdims=True)


def _identity(m):
    return m


#: comparison method -> (per-RDM transform, transform of the mean): pooling several RDMs into
#: the one that performs best under that comparison (as rsatoolbox's pool_rdm)
POOLERS: dict[str, tuple[Callable, Callable]] = {
    "cosine": (_scale_rows, _identity), "cosine_cov": (_scale_rows, _identity),
    "corr": (_z_rows, _shift_min), "pearson": (_z_rows, _shift_min),
    "corr_cov": (_z_rows, _shift_min),
    "spearman": (_rank_rows, _identity), "rho-a": (_rank_rows, _identity),
    "tau-a": (_rank_rows, _identity),
}


def _pools(v, method: str):
    """Row 0: pool of all RDMs; row 1 + s: pool of all but subject s."""
    per, post = POOLERS[method]
    t = per(v)
    n = v.shape[0]
    total = jnp.sum(t, axis=0, keepdims=True)
    return post(jnp.concatenate([total / n, (total - t) / (n - 1)]))


def pool_rdms(rdms: ArrayLike, method: str = "cosine") -> np.ndarray:
    """The condensed RDM that best represents a group under a comparison method."""
    if method not in POOLERS:
        raise ValueError(f"method must be one of {sorted(POOLERS)}, got {method!r}")
    v, *_ = rdm_vectors(rdms, name="rdms")
    return np.asarray(_pools(jnp.asarray(v, jnp.result_type(float)), method)[0])


def noise_ceiling(data: ArrayLike, method: str = "cosine") -> tuple[float, float]:
    """Lower and upper noise ceiling of a group of data RDMs (one per subject).

    The upper bound is the mean comparison of each subject's RDM with the pooled RDM of all
    subjects; the lower bound uses the pool of the other subjects (leave one subject out),
    as ``rsatoolbox.inference.boot_noise_ceiling``.

    Raises
    ------
    ValueError
        Fewer than 2 subjects or an unknown method.
    """
    if method not in POOLERS:
        raise ValueError(f"method must be one of {sorted(POOLERS)}, got {method!r}")
    v, *_ = rdm_vectors(data, name="data")
    n = v.shape[0]
    if n < 2:
        raise ValueError(f"a noise ceiling needs RDMs of >= 2 subjects, got {n}")
    dtype = jnp.result_type(float)
    sims = np.asarray(_ceiling_jit(jnp.asarray(v, dtype), method))
    return float(np.mean(np.diagonal(sims[1:]))), float(np.mean(sims[0]))


def _ceiling_core(v, method: str):
    sig = jnp.ones(n_cond_from_pairs(v.shape[1]), v.dtype)
    return COMPARE_METHODS[method](_pools(v, method), v, sig)


_ceiling_jit = jax.jit(_ceiling_core, static_argnums=1)


# ----------------------------------------------------------------------------- permutations


def permutation_test(
    model: ArrayLike,
    data: ArrayLike,
    method: str = "spearman",
    *,
    key: PRNGKeyArray,
    n_permutations: int = 1000,
) -> dict[str, Any]:
    """Test a model-data RDM relation by permuting the model's condition labels.

    Returns
    -------
    dict
        ``statistic`` (observed comparison), ``p_value`` ((1 + #null >= observed) /
        (1 + n_permutations), one-sided) and ``null`` (the permutation distribution).
    """
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {sorted(COMPARE_METHODS)}, got {method!r}")
    vm, *_ = rdm_vectors(model, name="model")
    vd, *_ = rdm_vectors(data, name="data")
    if vm.shape != (1, vd.shape[1]) or vd.shape[0] != 1:
        raise ValueError(f"model and data must be single RDMs of the same size, got "
                         f"{vm.shape[0]} x {vm.shape[1]} and {vd.shape[0]} x {vd.shape[1]} pairs")
    k = n_cond_from_pairs(vm.shape[1])
    i, j = np.triu_indices(k, 1)
    perms = jax.vmap(lambda kk: jax.random.permutation(kk, k))(
        jax.random.split(key, n_permutations))
    square = np.zeros((k, k))
    square[i, j] = square[j, i] = vm[0]
    pi, pj = np.asarray(perms)[:, i], np.asarray(perms)[:, j]
    permuted = square[pi, pj]
    dtype = jnp.result_type(float)
    sig = jnp.ones(k, dtype)
    fn = COMPARE_METHODS[method]
    stack = jnp.asarray(np.concatenate([vm, permuted]), dtype)
    sims = np.asarray(fn(stack, jnp.asarray(vd, dtype), sig))[:, 0]
    observed, null = float(sims[0]), sims[1:]
    p = (1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations)
    return {"statistic": observed, "p_value": float(p), "null": null}


# ----------------------------------------------------------------------------- tables


def model_comparison_table(result: xr.Dataset) -> pd.DataFrame:
    """Tidy table (one row per model, best first) from :func:`bootstrap_compare`.

    Columns: model, evaluation, se, ci_low, ci_high, and ``p_gt_zero``, a one-sided test of
    a positive relation (the bootstrap fraction of samples <= 0; for ``over="both"`` the t
    test on the corrected SE); plus the noise ceiling and ``frac_of_lower_ceiling`` when the
    result has one.
    """
    params = result.attrs.get("params", {})
    if params.get("over") == "both":  # a t test on the corrected SE (see bootstrap_compare)
        dof = params["dof"]
        p = scipy.stats.t.sf(result["evaluation"].values / result["se"].values, dof)
    else:
        p = np.mean(result["samples"].values <= 0, axis=0)
    df = pd.DataFrame({
        "model": result["model"].values,
        "evaluation": result["evaluation"].values,
        "se": result["se"].values,
        "ci_low": result["ci_low"].values,
        "ci_high": result["ci_high"].values,
        "p_gt_zero": p,
    })
    if "noise_ceiling_lower" in result:
        lower = float(result["noise_ceiling_lower"])
        df["noise_ceiling_lower"] = lower
        df["noise_ceiling_upper"] = float(result["noise_ceiling_upper"])
        df["frac_of_lower_ceiling"] = df["evaluation"] / lower if lower != 0 else np.nan
    return df.sort_values("evaluation", ascending=False).reset_index(drop=True)
