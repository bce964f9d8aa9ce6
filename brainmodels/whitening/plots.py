"""Figures of an adaptation result: whitening-error curves, gain trajectories, spectra."""

from __future__ import annotations

import numpy as np


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        return fig, ax
    return ax.figure, ax


def _circuits(da, along: str):
    """One 1-D (or ``along`` x other) slice per circuit/seed: every dim but ``along`` stacked."""
    rest = [d for d in da.dims if d not in (along, "interneuron")]
    if not rest:
        return [da]
    flat = da.stack(_circuit=rest)
    return [flat.isel(_circuit=i) for i in range(flat.sizes["_circuit"])]


def plot_error(ds, *, ax=None, threshold: float | None = 0.1):
    """||C_rr - I|| against samples seen (log scale), one line per circuit."""
    fig, ax = _axes(ax)
    for i, err in enumerate(_circuits(ds.error, "step")):
        ax.semilogy(ds.step, err, color=f"C{i % 10}", lw=1)
    if threshold is not None:
        ax.axhline(threshold, ls=":", color="k", label=f"threshold {threshold:g}")
        ax.legend(frameon=False)
    ax.set(xlabel=f"step ({ds.step.attrs.get('units', '')})", ylabel=r"$\|C_{rr} - I\|_{op}$",
           title="whitening error")
    return fig


def plot_gains(ds, *, ax=None, max_lines: int = 50):
    """Gain trajectories g_i(step) of the first circuit (at most ``max_lines`` interneurons)."""
    fig, ax = _axes(ax)
    g = _circuits(ds.gains_trace, "step")[0]
    idx = np.linspace(0, g.sizes["interneuron"] - 1, min(max_lines, g.sizes["interneuron"]))
    ax.plot(ds.step, g.isel(interneuron=idx.astype(int)).values, lw=0.8)
    ax.set(xlabel=f"step ({ds.step.attrs.get('units', '')})", ylabel="gain g",
           title="gain trajectories")
    return fig


def plot_spectrum(ds, *, ax=None):
    """Eigenvalues of the input and output covariances (descending, log scale)."""
    fig, ax = _axes(ax)
    comp = np.arange(1, ds.sizes["component"] + 1)
    for name, style in (("input_spectrum", "--"), ("output_spectrum", "-")):
        for i, s in enumerate(_circuits(ds[name], "component")):
            ax.semilogy(comp, s, style, color=f"C{i % 10}", lw=1,
                        label=name.split("_")[0] if i == 0 else None)
    ax.axhline(1.0, ls=":", color="k")
    ax.set(xlabel="component", ylabel="covariance eigenvalue", title="spectra")
    ax.legend(frameon=False)
    return fig
