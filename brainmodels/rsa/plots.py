"""Plots for RSA: RDM heatmaps, MDS embeddings, model-comparison bars with a noise ceiling.

Every function returns the matplotlib Figure, draws into ``axes`` when given, and saves
atomically to ``output_file`` when given (nilearn's convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from brainmodels._io import savefig_atomic
from brainmodels.data import unwrap
from brainmodels.rsa._utils import rdm_vectors, to_square

__all__ = ["plot_rdm", "plot_mds", "plot_model_comparison", "mds"]


def _axes(axes, figsize):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(figsize=figsize)
    return axes.figure, axes


def _finish(fig, output_file):
    if output_file is not None:
        savefig_atomic(fig, output_file, dpi=120, bbox_inches="tight")
    return fig


def _square_and_labels(rdm, labels):
    v, *_ = rdm_vectors(rdm, name="rdm")
    if v.shape[0] != 1:
        raise ValueError(f"plot one RDM at a time, got a stack of {v.shape[0]}")
    square = to_square(v[0])
    if labels is None and isinstance(rdm, xr.DataArray) and "condition_a" in rdm.coords:
        labels = [str(c) for c in rdm.coords["condition_a"].values]
    return square, labels


def plot_rdm(rdm: Any, *, labels=None, groups=None, title: str | None = None,
             cmap: str = "viridis", rank_transform: bool = False, axes=None, output_file=None,
             max_labels: int = 40):
    """Heatmap of an RDM with condition labels (thinned to at most ``max_labels`` ticks).

    ``rank_transform=True`` shows percentiles of the dissimilarities (the usual RSA display).
    ``groups`` (one label per condition, e.g. the category) sorts the conditions by group
    (stably), draws a coloured band per group along both axes with the group names as tick
    labels, and separates the groups by thin lines.
    """
    square, labels = _square_and_labels(rdm, labels)
    k = square.shape[0]
    if groups is not None:
        groups = np.asarray(unwrap(groups, name="groups")[0]).astype(str)
        if groups.shape != (k,):
            raise ValueError(f"groups must give one label per condition ({k},), got shape "
                             f"{groups.shape}")
        order = np.argsort(groups, kind="stable")
        square, groups = square[np.ix_(order, order)], groups[order]
        labels = None if labels is None else [labels[i] for i in order]
    if rank_transform:
        i, j = np.triu_indices(k, 1)
        ranks = np.argsort(np.argsort(square[i, j])) / max(len(i) - 1, 1) * 100
        square = np.zeros_like(square)
        square[i, j] = square[j, i] = ranks
    fig, ax = _axes(axes, (5.5, 4.5))
    im = ax.imshow(square, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="percentile" if rank_transform else "dissimilarity",
                 fraction=0.046)
    if groups is not None:
        _group_bands(ax, groups)
    elif labels is not None:
        step = max(1, int(np.ceil(k / max_labels)))
        ticks = np.arange(0, k, step)
        ax.set_xticks(ticks, [labels[t] for t in ticks], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [labels[t] for t in ticks], fontsize=7)
    if title:
        ax.set_title(title)
    return _finish(fig, output_file)


def _group_bands(ax, groups: np.ndarray) -> None:
    """Coloured strips outside the matrix for runs of equal (sorted) group labels."""
    import matplotlib.pyplot as plt

    k = len(groups)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    stops = np.r_[starts[1:], k]
    colours = plt.get_cmap("tab10")
    width = max(1.0, 0.03 * k)
    for n, (a, b) in enumerate(zip(starts, stops, strict=True)):
        c = colours(n % 10)
        ax.add_patch(plt.Rectangle((a - 0.5, k - 0.5), b - a, width, color=c, clip_on=False))
        ax.add_patch(plt.Rectangle((-0.5 - width, a - 0.5), width, b - a, color=c,
                                   clip_on=False))
        if a > 0:
            ax.axhline(a - 0.5, color="w", lw=0.6)
            ax.axvline(a - 0.5, color="w", lw=0.6)
    centres = (starts + stops - 1) / 2
    names = [groups[a] for a in starts]
    ax.set_xticks(centres, names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(centres, names, fontsize=8)
    ax.tick_params(length=0, pad=width * 72 / k + 4)
    ax.set_xlim(-0.5 - width, k - 0.5)
    ax.set_ylim(k - 0.5 + width, -0.5)


def mds(rdm: Any, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS of an RDM: (condition, component) coordinates.

    The RDM entries are treated as squared distances (as rsatoolbox's euclidean RDM is).
    """
    v, *_ = rdm_vectors(rdm, name="rdm")
    d = to_square(v[0])
    k = d.shape[0]
    h = np.eye(k) - 1.0 / k
    b = -0.5 * h @ d @ h
    lam, vec = np.linalg.eigh(b)
    order = np.argsort(lam)[::-1][:n_components]
    return vec[:, order] * np.sqrt(np.maximum(lam[order], 0.0))[None, :]


def plot_mds(rdm: Any, *, labels=None, groups=None, title: str | None = None, axes=None,
             output_file=None, annotate: bool = False):
    """2-D classical MDS embedding of an RDM, coloured by ``groups`` (e.g. categories)."""
    square, labels = _square_and_labels(rdm, labels)
    xy = mds(square)
    fig, ax = _axes(axes, (5, 5))
    if groups is not None:
        groups = np.asarray(unwrap(groups)[0])
        for g in np.unique(groups):
            sel = groups == g
            ax.scatter(xy[sel, 0], xy[sel, 1], s=18, label=str(g))
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.scatter(xy[:, 0], xy[:, 1], s=18)
    if annotate and labels is not None:
        for (x, y), lab in zip(xy, labels, strict=True):
            ax.annotate(lab, (x, y), fontsize=6)
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return _finish(fig, output_file)


def plot_model_comparison(result: xr.Dataset, *, title: str | None = None, axes=None,
                          output_file=None, order=None):
    """Bar plot of model evaluations with bootstrap CIs and the noise-ceiling band.

    ``result`` is the Dataset of :func:`brainmodels.rsa.bootstrap_compare`. ``order`` lists
    the model names left to right (keep one order across panels); default: best first.
    """
    models = [str(m) for m in result["model"].values]
    if order is None:
        order = np.argsort(-result["evaluation"].values)
    else:
        missing = sorted(set(map(str, order)) ^ set(models))
        if missing:
            raise ValueError(f"order must list the models {models} once each; differs in "
                             f"{missing}")
        order = [models.index(str(m)) for m in order]
    names = [str(result["model"].values[i]) for i in order]
    ev = result["evaluation"].values[order]
    lo = result["ci_low"].values[order]
    hi = result["ci_high"].values[order]
    fig, ax = _axes(axes, (max(4, 0.6 * len(names) + 2), 4))
    x = np.arange(len(names))
    ax.bar(x, ev, color="tab:blue", alpha=0.8)
    ax.errorbar(x, ev, yerr=[ev - lo, hi - ev], fmt="none", ecolor="k", capsize=3)
    if "noise_ceiling_lower" in result:
        ax.axhspan(float(result["noise_ceiling_lower"]), float(result["noise_ceiling_upper"]),
                   color="0.7", alpha=0.5, label="noise ceiling", zorder=0)
        ax.legend(frameon=False, fontsize=8)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel(f"RDM similarity ({result.attrs.get('params', {}).get('method', '')})")
    ax.axhline(0, color="k", lw=0.5)
    if title:
        ax.set_title(title)
    return _finish(fig, output_file)
