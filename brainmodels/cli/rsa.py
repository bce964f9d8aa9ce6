"""``brainmodels rsa``: compare model representations with ROI RDMs, with inference.

1. load a betas Dataset (netCDF) or generate the synthetic one,
2. compute one data RDM per ROI and fold (e.g. per repeat, so a noise ceiling exists),
3. compute model RDMs from feature spaces of the dataset, the images, or .npy files,
4. evaluate every model against every ROI with a vectorised bootstrap (over stimuli and
   folds) and the noise ceiling,
5. print the table and write rdms.nc, results.nc, table.csv and figures (PNG).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from brainmodels.cli._common import (
    add_data_arguments,
    add_out_argument,
    add_seed_argument,
    load_fmri_data,
    load_npy,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "rsa",
        help="representational similarity: compare model RDMs with ROI RDMs (with inference)",
        description=(
            "Compute a representational dissimilarity matrix (RDM) per ROI from single-trial "
            "betas, RDMs of model representations, and evaluate every model against every ROI "
            "with bootstrap confidence intervals and a noise ceiling. Writes rdms.nc, "
            "results.nc, table.csv and PNG figures to --out."
        ),
        epilog=(
            "examples:\n"
            "  brainmodels rsa --data synthetic --out rsa_out\n"
            "  brainmodels rsa --data betas.nc --models category,layer3.npy --method spearman\n"
            "A --data file is a netCDF Dataset in the brainmodels convention: betas (trial, "
            "voxel), stimulus_id (trial), a fold coord on trial (repeat or run) and a voxel "
            "coord roi; feature spaces as features_<name> (stimulus, feature_<name>)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(parser, n_stimuli=120, resolution=8.0)
    parser.add_argument("--models", default="retinotopic,category,pixels", metavar="LIST",
                        help="comma-separated model representations: feature spaces of the "
                             "dataset (features_<name>), 'pixels' (the images) or .npy files of "
                             "shape (stimulus, feature) (default: retinotopic,category,pixels)")
    parser.add_argument("--rois", default="all", metavar="LIST",
                        help="comma-separated ROIs, or 'all' (every ROI but 'none'; default)")
    parser.add_argument("--metric", default="correlation",
                        help="RDM metric for the data: correlation, euclidean, cosine (one RDM "
                             "per fold, with a noise ceiling) or crossnobis (cross-validated over "
                             "folds) (default: correlation)")
    parser.add_argument("--model-metric", default="auto",
                        help="RDM metric for the model representations: correlation, euclidean, "
                             "cosine, or auto (default): correlation distance, as rsatoolbox "
                             "users expect, except for a model with constant rows (e.g. all-zero "
                             "codes), where it is undefined and euclidean is used; the metric of "
                             "each model is printed")
    parser.add_argument("--method", default="corr",
                        help="RDM comparison: corr, cosine, spearman, rho-a, tau-a, corr_cov, "
                             "cosine_cov (default: corr)")
    parser.add_argument("--folds", default="repeat",
                        help="trial coord that splits the data into folds (default: repeat)")
    parser.add_argument("--n-bootstrap", type=int, default=1000,
                        help="bootstrap samples (default 1000)")
    parser.add_argument("--over", default="auto", choices=["auto", "both", "stimulus", "subject"],
                        help="what the bootstrap resamples: stimuli, folds ('subject') or both "
                             "with the dual-bootstrap correction (default auto: both where the "
                             "folds are subjects, --folds subject or participant, with >= 2 of "
                             "them; else stimuli, the folds held fixed)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    add_out_argument(parser, "rsa_output")
    add_seed_argument(parser)
    parser.set_defaults(func=run)


def _models(ds, spec: str) -> dict:

    out = {}
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name.endswith(".npy"):
            out[Path(name).stem] = load_npy(name, "model file")
        elif name == "pixels":
            if "images" not in ds:
                raise ValueError("model 'pixels' needs an images variable in the dataset")
            out["pixels"] = ds["images"].values.reshape(ds.sizes["stimulus"], -1)
        elif f"features_{name}" in ds:
            out[name] = ds[f"features_{name}"].values
        else:
            spaces = [str(v)[9:] for v in ds.data_vars if str(v).startswith("features_")]
            raise ValueError(f"unknown model {name!r}: use a feature space of the dataset "
                             f"{spaces}, 'pixels' or a .npy file")
    return out


def _model_metrics(reps: dict, choice: str) -> dict[str, str]:
    """Each model's RDM metric; ``auto``: correlation unless a row is constant."""
    import numpy as np

    if choice != "auto":
        return dict.fromkeys(reps, choice)
    out = {}
    for name, x in reps.items():
        x = np.asarray(x, float).reshape(len(x), -1)
        out[name] = "euclidean" if np.any(np.ptp(x, axis=1) == 0) else "correlation"
    return out


def _header(args, data, metrics: dict, result) -> str:
    """What was computed, in words: metrics, method and what the interval is."""
    import numpy as np
    from scipy import stats

    from brainmodels.rsa.roi import default_over

    folds = int(data.sizes.get("fold", 1))
    lines = [f"data RDMs: {args.metric} distance per ROI and fold ({folds} folds of "
             f"'{args.folds}')",
             "model RDMs: " + ", ".join(f"{m} ({metrics[m]})" for m in metrics)
             + ("  [auto: euclidean where a model has constant rows]"
                if args.model_metric == "auto" and "euclidean" in metrics.values() else ""),
             f"comparison: {args.method}; {args.n_bootstrap} bootstrap samples"]
    over = args.over if args.over != "auto" else default_over(data)
    if over == "both":
        df = min(folds, data.sizes["condition_a"]) - 1
        mult = float(stats.t.ppf(0.975, df))
        lines.append(
            f"interval: 95 % t interval on the corrected two-factor (stimuli x folds) bootstrap "
            f"SE (Schuett et al. 2023) with {df} degrees of freedom, i.e. +-{mult:.2f} SE; with "
            f"few folds it is wide: --over stimulus treats the folds as fixed")
    else:
        what = {"stimulus": "stimuli", "subject": "folds (as subjects)"}[over]
        lines.append(f"interval: 95 % bootstrap percentile interval over {what}"
                     + (f" ({folds} folds of '{args.folds}' held fixed; --over both also "
                        "resamples them as subjects)" if over == "stimulus" and folds >= 2
                        else ""))
    ceiling = result["noise_ceiling_lower"].values if "noise_ceiling_lower" in result else None
    if ceiling is not None and np.all(np.isfinite(ceiling)):
        lines.append("noise ceiling: each fold's RDM against the pool of the other folds "
                     "(lower) and of all folds (upper): where a true model would score")
    return "\n".join(lines)


def run(args) -> int:
    import jax

    from brainmodels._io import savefig_atomic
    from brainmodels.cli._common import format_table, progress
    from brainmodels.data import save_netcdf
    from brainmodels.rsa import (
        compare_models_by_roi,
        model_rdms,
        plot_model_comparison,
        plot_rdm,
        roi_rdms,
    )

    ds = load_fmri_data(args)
    rois = None if args.rois == "all" else [r.strip() for r in args.rois.split(",")]
    data = roi_rdms(ds, args.metric, rois=rois, folds=args.folds)
    reps = _models(ds, args.models)
    metrics = _model_metrics(reps, args.model_metric)
    models = model_rdms(reps, metrics)
    if models.sizes["condition_a"] != data.sizes["condition_a"]:
        raise ValueError(f"models have {models.sizes['condition_a']} stimuli, the data "
                         f"{data.sizes['condition_a']}")
    result, table = compare_models_by_roi(data, models, args.method,
                                          key=jax.random.key(args.seed),
                                          n_bootstrap=args.n_bootstrap,
                                          over=None if args.over == "auto" else args.over,
                                          progress=lambda it: progress(it, desc="ROIs"))
    out = Path(args.out)
    save_netcdf(data.to_dataset(name="data_rdm").assign(model_rdm=models.rename(
        condition_a="model_condition_a", condition_b="model_condition_b")), out / "rdms.nc")
    save_netcdf(result, out / "results.nc")
    from brainmodels._io import write_text_atomic

    write_text_atomic(out / "table.csv", table.to_csv(index=False))
    print(_header(args, data, metrics, result))
    print(format_table(table.to_dict("records")))
    if not args.no_plots:
        _plots(result, data, _condition_groups(ds, data), out, plot_model_comparison, plot_rdm,
               savefig_atomic)
    return 0


def _plots(result, data, groups, out, plot_model_comparison, plot_rdm, savefig_atomic):
    """One model-comparison panel per ROI (the models in one order throughout) and the data
    RDM of every ROI, conditions sorted by category with category bands on the axes."""
    import matplotlib.pyplot as plt

    rois = list(result["roi"].values)
    models = [str(m) for m in result["model"].values]
    ncol = min(4, len(rois))
    nrow = -(-len(rois) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, roi in zip(axes.flat, rois, strict=False):
        plot_model_comparison(result.sel(roi=roi), axes=ax, title=str(roi), order=models)
    for ax in axes.flat[len(rois):]:
        ax.set_visible(False)
    fig.tight_layout()
    savefig_atomic(fig, out / "model_comparison.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow), squeeze=False)
    for ax, roi in zip(axes.flat, rois, strict=False):
        rdm = data.sel(roi=roi)
        rdm = rdm.mean("fold") if "fold" in rdm.dims else rdm
        plot_rdm(rdm, groups=groups, rank_transform=True, axes=ax, title=f"{roi} (percentile)")
    for ax in axes.flat[len(rois):]:
        ax.set_visible(False)
    fig.tight_layout()
    savefig_atomic(fig, out / "rdms.png", dpi=110)
    plt.close(fig)


def _condition_groups(ds, data):
    """Category labels of the RDM's conditions from the dataset's stimulus coords (or None)."""
    for name in ("category", "kind"):
        if name in ds.coords and ds.coords[name].dims == ("stimulus",):
            return ds.coords[name].sel(stimulus=data["condition_a"].values).values
    return None
