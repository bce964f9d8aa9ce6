"""Plots of Kuramoto simulations and sweeps."""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainmodels.kuramoto.theory import stationary_order_parameter

# ----------------------------------------------------------------------------- plots


def plot_order_parameter(ds: xr.Dataset, *, couplings=None, ax=None):
    """Plot r(t) (mean over seeds) of a :func:`sweep` or :func:`simulate` result.

    ``couplings``: which to draw for a sweep (default: up to 6 spread over the range).
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    r = ds.order_parameter
    if "coupling" in r.dims:
        ks = ds.coupling.values
        if couplings is None:
            couplings = ks[np.linspace(0, len(ks) - 1, min(6, len(ks))).round().astype(int)]
        for k in couplings:
            ax.plot(ds.time, r.sel(coupling=k).mean("seed"), label=f"K = {k:.2f}")
        ax.legend(fontsize=8)
    else:
        ax.plot(ds.time, r)
    ax.set(xlabel="time", ylabel="order parameter r(t)", ylim=(0, 1.02))
    return fig


def plot_sweep(ds: xr.Dataset, *, ax=None, last: float = 0.5):
    """Plot the stationary r (mean over the last ``last`` fraction of time) against K.

    Seeds are grey dots, their mean blue; the N -> inf theory (if the sweep carries it) is drawn
    as a curve with K_c marked. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    start = int(ds.sizes["time"] * (1.0 - last))
    r = ds.order_parameter.isel(time=slice(start, None)).mean("time")
    ks = ds.coupling.values
    for s in ds.seed.values:
        ax.plot(ks, r.sel(seed=s), ".", color="0.6", ms=4)
    n = ds.attrs.get("params", {}).get("n", "?")
    ax.plot(ks, r.mean("seed"), "o", color="C0", label=f"simulation (N = {n})")
    if "order_parameter_theory" in ds:
        p = ds.attrs["params"]
        fine = np.linspace(ks.min(), ks.max(), 400)
        dist = p["frequencies"].split()[-1]
        ax.plot(fine, stationary_order_parameter(fine, dist, width=p["width"], lag=p["lag"]),
                "-", color="C3", label="N -> inf theory")
        ax.axvline(ds.attrs["critical_coupling"], ls=":", color="C3", label="K_c")
    ax.set(xlabel="coupling K", ylabel="stationary r", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return fig
