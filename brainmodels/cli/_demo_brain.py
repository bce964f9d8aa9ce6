"""The demo's second half: every model family's representations of the dataset's images,
compared with the brain by encoding and RSA, and the figures of the report."""

from __future__ import annotations

import time
from pathlib import Path


def demo_models(images, *, seed: int, small: bool = False,
                families: tuple[str, ...] | None = None) -> dict:
    """One small, untrained model per family, each driven by the stimuli (name -> (model,
    representation options)); ``families`` picks some (default: all, :data:`FAMILIES`)."""
    import jax
    from flax import nnx

    from brainmodels import akorn, snn, wave_rnn
    from brainmodels.representations import (
        GaborEnergy,
        KuramotoGrid,
        RandomFeatures,
        WhiteningCircuit,
    )

    side = images.shape[-1]
    builders = {
        "gabor": lambda: (GaborEnergy(), {}),
        "random": lambda: (RandomFeatures(n_features=256 if small else 512, seed=seed), {}),
        "whitening": lambda: (WhiteningCircuit.fit(images, 4, key=jax.random.key(seed),
                                                   n_patches=5000 if small else 20000), {}),
        "kuramoto": lambda: (KuramotoGrid(grid=8, steps=100 if small else 200), {}),
        "akorn": lambda: (akorn.AKOrN(image_size=side, in_channels=1, patch=2, channels=16, n=4,
                                      T=3 if small else 4, rngs=nnx.Rngs(seed)), {}),
        "wave_rnn": lambda: (wave_rnn.WaveRNN(side, 32, 4, 10, rngs=nnx.Rngs(seed)),
                             {"time_bins": 8}),
        "snn": lambda: (snn.coba(seed=seed, n=128 if small else 256, drive_mv=8.0),
                        {"duration_ms": 50.0 if small else 100.0, "bin_ms": 50.0,
                         "gain": 12.0}),
    }
    families = FAMILIES if families is None else tuple(families)
    unknown = sorted(set(families) - set(builders))
    if unknown:
        raise ValueError(f"families must be among {list(FAMILIES)}, got {unknown}")
    return {name: builders[name]() for name in families}


#: every family, in the report's order
FAMILIES = ("gabor", "random", "whitening", "kuramoto", "akorn", "wave_rnn", "snn")


def all_representations(images, models: dict, *, seed: int, say=print) -> dict:
    import jax

    from brainmodels.representations import representations

    reps = {}
    for i, (name, (model, options)) in enumerate(models.items()):
        t0 = time.perf_counter()
        reps[name] = representations(model, images, key=jax.random.key(seed + i), **options)
        layers = ", ".join(f"{v} {reps[name][v].shape[1:]}" for v in reps[name].data_vars)
        say(f"      {name:<10s} {time.perf_counter() - t0:5.1f} s  {layers}", flush=True)
    return reps


def roi_table(result) -> list[dict]:
    import numpy as np

    rows = []
    for roi in result["roi"].values:
        r = result.sel(roi=roi)
        be, br = str(r["best_layer_encoding"].values), str(r["best_layer_rsa"].values)
        row = {"roi": str(roi), "voxels": int(r["n_voxels"]),
               "best encoding layer": be, "r": float(r["encoding_r"].sel(layer=be)),
               "r ceiling": float(r["encoding_ceiling"]),
               "best RSA layer": br, "rsa": float(r["rsa"].sel(layer=br))}
        if "rsa_ceiling_low" in r:
            row["rsa ceiling"] = (f"{float(r['rsa_ceiling_low']):.3f}-"
                                  f"{float(r['rsa_ceiling_high']):.3f}")
        rows.append({k: (round(v, 3) if isinstance(v, float) and np.isfinite(v) else v)
                     for k, v in row.items()})
    return rows


def figures(ds, reps, result, out: Path, *, seed: int, small: bool = False,
            wave_model=None) -> dict[str, Path]:
    """The report's figures as PNG files (name -> path)."""
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap

    from brainmodels import brainmaps, kuramoto, rsa, snn, wave_rnn, whitening
    from brainmodels._io import savefig_atomic
    from brainmodels.representations import best_layer_map, layer_colors, plot_model_brain

    files: dict[str, Path] = {}

    def save(fig, name):
        files[name] = savefig_atomic(fig, out / f"{name}.png", dpi=100)
        plt.close(fig)

    save(plot_model_brain(result), "model_brain")
    # best layer per voxel, on the volume and the surface (-1: no layer reaches r = 0.1)
    best = best_layer_map(result)
    full = np.full(ds.sizes["voxel"], 0.0)
    full[np.searchsorted(ds["voxel"].values, best["voxel"].values)] = best.values + 1.0
    # one colour per layer, the bar chart's; index k (1..n) sits mid-way in its colour's band
    n_layers = result.sizes["layer"]
    cmap = ListedColormap(layer_colors(n_layers), name="layers")
    fig = brainmaps.plot_brain_map(full, ds, kind="stat", cmap=cmap, vmin=0.5,
                                   vmax=n_layers + 0.5, symmetric_cbar=False,
                                   title="best layer per voxel (colours: the bar chart's)")
    save(fig, "best_layer")
    r_best = np.zeros(ds.sizes["voxel"])
    r_best[np.searchsorted(ds["voxel"].values, best["voxel"].values)] = \
        result["voxel_r"].max("layer").values
    fig = brainmaps.plot_surface_map(r_best, ds, threshold=0.1, vmax=1.0,
                                     title="held-out r of the best layer per voxel")
    save(fig, "best_r_surface")
    # RDMs sorted by category: two ROIs' data and their best layers
    test = np.asarray(result.attrs["test_stimuli"])
    cats = np.asarray(ds["category"].values)[test]
    held = np.isin(ds["stimulus_id"].values, test)
    sub = ds[["betas"]].isel(trial=held)
    rois = [r for r in ("V1", str(result["roi"].values[-1])) if r in result["roi"].values]
    data = rsa.roi_rdms(sub, "correlation", rois=rois, folds="repeat").mean("fold")
    fig, axes = plt.subplots(1, 2 * len(rois), figsize=(5 * len(rois) * 2, 4.6),
                             constrained_layout=True)
    feats = _stacked(reps)
    for i, roi in enumerate(rois):
        rsa.plot_rdm(data.sel(roi=roi).values, groups=cats, rank_transform=True,
                     title=f"data: {roi}", axes=axes[2 * i])
        layer = str(result["best_layer_rsa"].sel(roi=roi).values)
        pos = np.searchsorted(np.asarray(reps[layer.split("/")[0]]["stimulus"].values), test)
        m = rsa.rdm(feats[layer][pos], "correlation")
        rsa.plot_rdm(m, groups=cats, rank_transform=True, title=f"model: {layer}",
                     axes=axes[2 * i + 1])
    save(fig, "rdms")
    # simulations: a raster, r(K), waves, whitening error
    net = snn.coba(seed=seed, n=400, drive_mv=20.0)
    res = snn.simulate(net, duration_ms=200.0 if small else 500.0)
    fig, ax = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
    ax.plot(res["spike_time"].values, res["spike_neuron"].values, "|k", ms=2, mew=0.5)
    ax.set(xlabel="time (ms)", ylabel="neuron",
           title=f"COBA network (Brette et al. 2007), {net.n_neurons} neurons")
    save(fig, "raster")
    sw = kuramoto.sweep(np.linspace(0.0, 4.0, 9 if small else 17), n=500, seeds=(0, 1),
                        steps=800 if small else 2000)
    save(kuramoto.plot_sweep(sw), "kuramoto_rK")
    if wave_model is None:
        wave_model = demo_models(ds["images"].values[:2], seed=seed, small=small,
                                 families=("wave_rnn",))["wave_rnn"][0]
    _, states = wave_model(jax.numpy.asarray(ds["images"].values[:1]), return_states=True)
    save(wave_rnn.plot_waves(np.asarray(states)), "waves")
    cov = whitening.random_covariance(4, 10.0, key=jax.random.key(seed))
    x = jax.random.multivariate_normal(jax.random.key(seed + 1), np.zeros(4), cov, (20000,))
    frame = whitening.random_frame(4, key=jax.random.key(seed + 2))
    ad = whitening.adapt(frame, np.asarray(x), lr=0.02, batch_size=10, cov=cov)
    save(whitening.plot_error(ad), "whitening_error")
    return files


def _stacked(reps) -> dict:
    from brainmodels.representations import stack_layers

    return stack_layers(reps)


def run_brain(ds, out: Path, *, seed: int, small: bool = False, say=print,
              families: tuple[str, ...] | None = None) -> list[Path]:
    """Representations -> compare_to_brain -> tables, netCDF, figures and report.html."""
    import jax

    from brainmodels.cli._common import format_table
    from brainmodels.cli._report import write_report
    from brainmodels.data import save_netcdf
    from brainmodels.representations import compare_to_brain

    t0 = time.perf_counter()
    say("[4/5] representations of the stimuli from every model family (untrained models) ...",
        flush=True)
    models = demo_models(ds["images"], seed=seed, small=small, families=families)
    reps = all_representations(ds["images"], models, seed=seed, say=say)
    say("[5/5] models meet the brain: ridge encoders per layer and RSA per ROI ...", flush=True)
    from functools import partial

    from brainmodels.cli._common import progress

    result = compare_to_brain(reps, ds, key=jax.random.key(seed),
                              n_bootstrap=50 if small else 200,
                              progress=partial(progress, desc="      layers"))
    rows = roi_table(result)
    table = format_table(rows)
    say(f"held-out stimuli: {len(result.attrs['test_stimuli'])}; encoding r = median over the "
        "ROI's voxels of the correlation with the repeat-averaged response; RSA = "
        f"{result.attrs['params']['rsa_method']} of correlation-distance RDMs")
    say(table)
    out.mkdir(parents=True, exist_ok=True)
    files = [save_netcdf(result, out / "models_brain.nc")]
    figs = figures(ds, reps, result, out, seed=seed, small=small,
                   wave_model=models["wave_rnn"][0] if "wave_rnn" in models else None)
    files += list(figs.values())
    files.append(write_report(out / "report.html", ds, result, rows, figs, reps=reps))
    say(f"      figures and report.html written ({time.perf_counter() - t0:.1f} s for steps 4-5)")
    return files


__all__ = ["run_brain", "demo_models", "all_representations", "roi_table", "figures"]
