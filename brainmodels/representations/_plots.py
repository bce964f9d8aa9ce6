"""Figures of :func:`compare_to_brain`: layer x ROI scores against the ceilings, best layer map."""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["plot_model_brain", "best_layer_map", "layer_colors"]


def best_layer_map(result: xr.DataArray | xr.Dataset, *, min_r: float = 0.1) -> xr.DataArray:
    """Index of the best-predicting layer per voxel (-1 where no layer reaches ``min_r``).

    The layer names are in the result's ``layers`` attribute, in index order.
    """
    r = result["voxel_r"] if isinstance(result, xr.Dataset) else result
    best = r.argmax("layer").values
    best = np.where(r.max("layer").values >= min_r, best, -1)
    out = xr.DataArray(best.astype(np.int16), dims=("voxel",),
                       coords={k: c for k, c in r.coords.items() if c.dims == ("voxel",)},
                       name="best_layer")
    out.attrs["layers"] = [str(x) for x in r["layer"].values]
    out.attrs["min_r"] = float(min_r)
    return out


def layer_colors(n_layers: int) -> np.ndarray:
    """The RGBA colour of each layer in :func:`plot_model_brain` (tab10, tab20 past 10 layers,
    repeating past 20); use it to draw the same layer in the same colour elsewhere."""
    import matplotlib.pyplot as plt

    return plt.get_cmap("tab20" if n_layers > 10 else "tab10")(np.arange(n_layers) % 20)


def plot_model_brain(result: xr.Dataset, *, title: str | None = None, output_file=None):
    """Encoding (top) and RSA (bottom) scores per ROI and layer, with the noise ceilings.

    Bars are the layers (95 % bootstrap intervals as error bars); the grey band is the
    ROI's ceiling (encoding: median ceiling of its voxels; RSA: lower to upper ceiling); a
    star marks the best layer of each ROI. Returns the figure (saved atomically to
    ``output_file`` if given).
    """
    import matplotlib.pyplot as plt

    from brainmodels._io import savefig_atomic

    for need in ("encoding_r", "rsa"):
        if need not in result:
            raise ValueError(f"result must come from compare_to_brain (missing {need!r})")
    layers = [str(x) for x in result["layer"].values]
    rois = [str(x) for x in result["roi"].values]
    n_l = len(layers)
    width = 0.8 / n_l
    colors = layer_colors(n_l)
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, 1.2 * len(rois) + 0.25 * n_l), 7.5),
                             sharex=True, constrained_layout=True)
    panels = (("encoding_r", "encoding_ci_low", "encoding_ci_high", "encoding r (held-out)"),
              ("rsa", "rsa_ci_low", "rsa_ci_high",
               f"RSA ({result.attrs.get('params', {}).get('rsa_method', '')})"))
    x0 = np.arange(len(rois))
    for ax, (var, lo, hi, label) in zip(axes, panels, strict=True):
        vals = result[var].transpose("layer", "roi").values
        err = np.stack([vals - result[lo].transpose("layer", "roi").values,
                        result[hi].transpose("layer", "roi").values - vals])
        for li in range(n_l):
            xs = x0 - 0.4 + width * (li + 0.5)
            ax.bar(xs, vals[li], width, yerr=np.clip(err[:, li], 0, None), color=colors[li],
                   label=layers[li], error_kw={"lw": 0.8})
        for ri in range(len(rois)):
            if var == "encoding_r":
                band = (0.0, float(result["encoding_ceiling"].values[ri]))
            elif "rsa_ceiling_low" in result:
                band = (float(result["rsa_ceiling_low"].values[ri]),
                        float(result["rsa_ceiling_high"].values[ri]))
            else:
                continue
            ax.fill_between([ri - 0.45, ri + 0.45], band[0] if var != "encoding_r" else
                            band[1], band[1], color="0.6", alpha=0.35, lw=0)
            ax.hlines(band[1], ri - 0.45, ri + 0.45, color="0.35", lw=1.2)
            best = int(np.nanargmax(vals[:, ri]))
            ax.plot(x0[ri] - 0.4 + width * (best + 0.5), vals[best, ri] + 0.02, "*",
                    color="k", ms=8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel(label)
    axes[1].set_xticks(x0, rois)
    axes[0].legend(fontsize=7, ncol=max(1, n_l // 8), loc="upper left", bbox_to_anchor=(1, 1))
    axes[0].set_title(title or "models meet the brain: layer x ROI (grey: noise ceiling; "
                      "*: best layer)")
    if output_file is not None:
        savefig_atomic(fig, output_file, dpi=110)
    return fig
