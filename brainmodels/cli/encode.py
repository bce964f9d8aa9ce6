"""``brainmodels encode``: fit voxel encoders and report per-ROI scores.

The work is done by :func:`run_encode`, which the ``demo`` command calls too (steps 1-4 live in
:mod:`brainmodels.cli._encode_fit`, the writing here):

1. split the stimuli into training and held-out sets (``test_fraction``, by ``seed``),
2. fit an encoder on the repeat-averaged responses to the training stimuli. ``model`` picks
   it (:data:`MODELS`): a :class:`~brainmodels.encoders.RidgeEncoder` (the default; one alpha
   per voxel; ``cv="loo"`` is exact and valid here because the averaged betas of distinct
   stimuli are independent samples), or one of the gradient-trained encoders:
   :class:`~brainmodels.encoders.AttentionRoutingEncoder` and
   :class:`~brainmodels.encoders.FactorizedReadout` read a spatial feature map (``"map"``: the
   dataset's Gabor-energy map, :func:`brainmodels.datasets.feature_map`, or a 4-D ``.npy``),
   :class:`~brainmodels.encoders.InContextEncoder` reads flat feature spaces like ridge.
   Voxels constant over the training stimuli are not fitted (they predict their constant and
   score 0, as ridge's ``drop_constant=True`` does),
3. score the predictions against the held-out *single-trial* betas (correlation and R^2),
4. estimate the noise ceiling from the repeats (bias-corrected explainable variance),
5. call a voxel "above chance" when its held-out correlation passes a one-sided t-test
   (``r > 0``, ``n`` = held-out trials) at a Benjamini-Hochberg false discovery rate of 5 %,
6. print the per-ROI table and write the model, scores, alphas (netCDF), the table (CSV) and
   brain maps (PNG, NIfTI); the gradient-trained models add ``history.nc`` (training curve),
   the attention model ``attention.nc`` (where each query looks, for up to 16 held-out
   stimuli), the factorized readout its receptive fields (``rf_x``, ``rf_y``, ``rf_size`` in
   ``model.nc`` and ``scores.nc``).

With ``--banded`` the feature spaces are bands of a
:class:`~brainmodels.encoders.BandedRidgeEncoder` (one penalty per space and voxel, by random
search over band weights, cross-validated in K folds), and the held-out R^2 is split over the
spaces (product measure): the table gains each space's median split R^2 and band weight, and
the maps one split-R^2 map per space. ``--scheduler`` fits its voxel chunks on a dask cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from brainmodels.cli._common import (
    add_data_arguments,
    add_out_argument,
    add_seed_argument,
    load_fmri_data,
)
from brainmodels.cli._encode_fit import (
    CHANCE,
    MAP,
    MODELS,
    DaskClient,
    Fitted,
    encode_neural,
    encode_ridge,
)

#: Options of ``encode`` that only the ridge models read: (flag, argparse dest).
_RIDGE_OPTIONS = (("--banded", "banded"), ("--cv", "cv"), ("--alphas", "alphas"),
                  ("--voxel-batch", "voxel_batch"), ("--n-iter", "n_iter"),
                  ("--scheduler", "scheduler"), ("--voxel-chunk", "voxel_chunk"))


def register(sub) -> None:
    models = "\n".join(f"  {name:<11} {m.summary}" for name, m in MODELS.items())
    examples = "\n".join(f"  {m.example}" for m in MODELS.values())
    parser = sub.add_parser(
        "encode",
        help="fit voxel encoders (features -> voxels: ridge, attention, factorized, in-context) "
             "and report per-ROI scores",
        description=(
            "Fit a voxel encoder (by default one ridge regression per voxel, alpha chosen per "
            "voxel by cross-validation) from stimulus features to the repeat-averaged fMRI betas "
            "of the training stimuli, score it against the single-trial betas of held-out "
            "stimuli, and print a per-ROI table: median held-out correlation, fraction of voxels "
            f"above chance ({CHANCE}), median noise ceiling and median normalised score. Writes "
            "model.nc (the fitted encoder; for ridge coefficients, alphas, CV scores), scores.nc, "
            "roi_table.csv and brain maps (PNG, NIfTI); the gradient-trained models add "
            "history.nc (train_loss and validation test_r over the steps)."
        ),
        epilog=(
            f"models (--model):\n{models}\n"
            f"one example each:\n{examples}\n"
            "more examples:\n"
            "  brainmodels encode --data my_betas.nc --features clip.npy --cv 5 --out enc\n"
            "  brainmodels encode --features retinotopic,category --banded --cv 5 --out enc\n"
            "  brainmodels encode --features a.npy,b.npy --banded --cv 5 --scheduler local:4\n"
            "  brainmodels encode --model factorized --features vgg_conv3.npy --out enc\n"
            "A --data file is a netCDF Dataset in the brainmodels convention: betas (trial, "
            "voxel), stimulus_id (trial), optional features_<name> (stimulus, feature_<name>), "
            "voxel coords roi and i, j, k with attrs affine/volume_shape for the maps. "
            "attention and factorized read a spatial feature map: --features map (the default "
            "for them) is the Gabor-energy map of a synthetic-style dataset's images "
            "(positions in degrees); a 4-D .npy (stimulus, y, x, channel) is any other map "
            "(positions in grid units, -1..1 across the map)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_arguments(parser, n_stimuli=1000, resolution=4.0)
    parser.add_argument("--model", choices=list(MODELS), default=None,
                        help="the encoder (default ridge; the models are listed below)")
    parser.add_argument("--features", default=None, metavar="SPACES",
                        help="ridge and in-context: comma-separated feature spaces, names of "
                             "features_<name> variables of the dataset or .npy files of shape "
                             "(stimulus, feature) (default: retinotopic,category). attention "
                             "and factorized: 'map' (default; the dataset's Gabor-energy map, "
                             "positions in degrees) or one .npy of shape (stimulus, y, x, "
                             "channel) (positions in grid units)")
    parser.add_argument("--max-steps", type=_positive_int, default=None,
                        help="training steps at most of attention, factorized and in-context "
                             "(early stopping on the validation r may end sooner; default: the "
                             "encoder's own)")
    parser.add_argument("--cv", default=None, metavar="loo|K", type=_parse_cv,
                        help="ridge: alpha selection on the repeat-averaged training stimuli: "
                             "exact leave-one-out (default; valid because distinct stimuli are "
                             "independent samples) or K contiguous folds")
    parser.add_argument("--alphas", default=None, metavar="LO,HI,N", type=_parse_alphas,
                        help="ridge: alphas = logspace(LO, HI, N); write --alphas=-2,6,17 (with "
                             "=) when LO is negative (default -2,6,17)")
    parser.add_argument("--test-fraction", type=_fraction, default=0.2,
                        help="fraction of stimuli held out for scoring (default 0.2)")
    parser.add_argument("--voxel-batch", type=_positive_int, default=None,
                        help="ridge: voxels per jitted batch; lower it to save memory "
                             "(default 1024)")
    parser.add_argument("--no-maps", action="store_true", help="skip the brain maps")
    band = parser.add_argument_group(
        "banded ridge (one penalty per feature space; held-out R^2 split over the spaces)")
    band.add_argument("--banded", action="store_true",
                      help="fit a BandedRidgeEncoder over the --features spaces (needs two or "
                           "more; --cv must be K folds; --model ridge only) and write split-R^2 "
                           "scores and maps")
    band.add_argument("--n-iter", type=_positive_int, default=None,
                      help="random-search candidates of band weights (default 20)")
    band.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N",
                      type=_parse_scheduler,
                      help="fit voxel chunks on a dask.distributed cluster: a scheduler address "
                           "(tcp://host:8786) or local:N for N single-threaded local workers "
                           "(needs --banded and pip install 'brainmodels[distributed]')")
    band.add_argument("--voxel-chunk", type=_positive_int, default=None,
                      help="voxels per chunk sent to a worker (default: an even split over "
                           "twice the workers)")
    add_out_argument(parser, "encode_output")
    add_seed_argument(parser)
    parser.set_defaults(func=run)


def _parse_alphas(text: str):
    """``--alphas LO,HI,N``: checked when the arguments are parsed, before any data work."""
    import numpy as np

    try:
        lo, hi, n = (float(t) for t in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"must be 'LO,HI,N' (logspace exponents), got {text!r}") from err
    if n < 1 or n != int(n) or lo > hi:
        raise argparse.ArgumentTypeError(f"needs LO <= HI and a whole N >= 1, got {text!r}")
    return np.logspace(lo, hi, int(n))


def _parse_cv(text: str):
    """``--cv loo|K``, checked at parse time: 'runs' needs time series, which encode's
    repeat-averaged betas are not."""
    if text == "loo":
        return text
    if text.isdigit() and int(text) >= 2:
        return int(text)
    if text == "runs":
        raise argparse.ArgumentTypeError(
            "'runs' (leave-one-run-out) is for BOLD time series; encode fits repeat-averaged "
            "betas of distinct stimuli: use loo or a number of folds K >= 2")
    raise argparse.ArgumentTypeError(f"must be loo or a number of folds K >= 2, got {text!r}")


def _parse_scheduler(text: str):
    """``--scheduler ADDRESS|local:N``: ('local', N) or ('address', text)."""
    if text.startswith("local:"):
        n = text[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(
                f"local:N needs a whole number of workers N >= 1, got {text!r}")
        return ("local", int(n))
    if "://" not in text:
        raise argparse.ArgumentTypeError(
            f"must be a scheduler address such as tcp://host:8786 or local:N, got {text!r}")
    return ("address", text)


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def run(args) -> int:
    model = args.model or "ridge"
    _check_model_options(args, model)
    features = args.features if args.features is not None else MODELS[model].default_features
    spaces = [s for s in features.split(",") if s]
    _check_inputs(model, spaces)
    cv = "loo" if args.cv is None else args.cv
    if args.scheduler is not None and not args.banded:
        raise ValueError("--scheduler fits the voxel chunks of a banded ridge: add --banded "
                         "(with a single feature space it is plain ridge)")
    if args.banded and cv == "loo":
        raise ValueError("--banded cross-validates band weights in K folds: pass --cv K (e.g. "
                         "--cv 5); exact leave-one-out is for plain ridge")
    if args.banded and len(spaces) < 2:
        raise ValueError(f"--banded needs two or more feature spaces in --features, got {spaces}")
    ds = load_fmri_data(args, verbose=True)
    with DaskClient(args.scheduler) as client:
        run_encode(ds, spaces, args.out, model=model, cv=cv,
                   alphas=_parse_alphas("-2,6,17") if args.alphas is None else args.alphas,
                   seed=args.seed, test_fraction=args.test_fraction,
                   voxel_batch=1024 if args.voxel_batch is None else args.voxel_batch,
                   maps=not args.no_maps, banded=args.banded,
                   n_iter=20 if args.n_iter is None else args.n_iter,
                   client=client, voxel_chunk=args.voxel_chunk, max_steps=args.max_steps)
    return 0


def _check_model_options(args, model: str) -> None:
    """Options of another model are refused, not ignored."""
    if model == "ridge":
        if args.max_steps is not None:
            raise ValueError("--max-steps bounds the training of --model attention, factorized "
                             "or in-context; ridge is fitted in closed form")
        return
    if args.banded:
        raise ValueError(f"--banded fits a banded ridge: it needs --model ridge (the default), "
                         f"not --model {model}")
    given = [flag for flag, dest in _RIDGE_OPTIONS
             if getattr(args, dest) is not None and getattr(args, dest) is not False]
    if given:
        it, kind = ("it", "is a ridge option") if len(given) == 1 else ("them", "are ridge options")
        raise ValueError(f"{', '.join(given)} {kind}; --model {model} does not read {it} (drop "
                         f"{it}, or use --model ridge)")


def _check_inputs(model: str, spaces) -> None:
    """The feature inputs ``model`` reads: a spatial map (``"map"`` or one 4-D .npy) or flat
    spaces; the other kind is refused with what to pass instead."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {list(MODELS)}")
    if MODELS[model].inputs != "map":
        return
    named = [str(s) for s in spaces]
    if len(named) == 1 and (named[0] == MAP or named[0].endswith(".npy")):
        return
    flat = [s for s in named if s != MAP and not s.endswith(".npy")]
    what = (f"flat feature spaces {flat}" if flat else f"{len(named)} inputs {named}")
    raise ValueError(f"--model {model} reads one spatial feature map, not {what}: use "
                     f"--features {MAP} (the dataset's Gabor-energy map, the default for this "
                     f"model) or one 4-D .npy (stimulus, y, x, channel)")



def _table(ds, scores) -> list[dict]:

    import numpy as np

    from brainmodels.encoders import roi_summary

    roi = ds["roi"].values if "roi" in ds.coords or "roi" in ds else np.full(
        ds.sizes["voxel"], "all")
    keys = ["correlation", "noise_ceiling", "normalized_score", "true_noise_ceiling",
            *(k for k in scores if k.startswith(("r2_split_", "band_weight_")))]
    summary = roi_summary({k: scores[k] for k in keys if k in scores}, roi,
                          significant=scores["above_chance"])
    kinds = dict(zip(np.asarray(roi).astype(str), ds["roi_kind"].values.astype(str),
                     strict=True)) if "roi_kind" in ds.coords else {}
    order = sorted(summary["roi"].values, key=lambda r: (r == "none", kinds.get(r, ""), r))
    rows = []
    for r in order:
        s = summary.sel(roi=r)
        row = {"roi": str(r), "voxels": int(s["n_voxels"]),
               "median_r": float(s["median_correlation"]),
               "above_chance": float(s["fraction_significant"]),
               "median_ceiling": float(s["median_noise_ceiling"]),
               "median_r/ceiling": float(s["median_normalized_score"])}
        if "median_true_noise_ceiling" in s:
            row["true_ceiling"] = float(s["median_true_noise_ceiling"])
        for k in scores:
            if k.startswith("r2_split_"):
                row[f"R2[{k[len('r2_split_'):]}]"] = float(s[f"median_{k}"])
        for k in scores:
            if k.startswith("band_weight_"):
                row[f"w[{k[len('band_weight_'):]}]"] = float(s[f"median_{k}"])
        rows.append(row)
    return rows


def _write(ds, fitted: Fitted, rows, out: Path, *, label: str, maps: bool) -> list[Path]:
    import numpy as np
    import xarray as xr

    from brainmodels._io import write_text_atomic
    from brainmodels.data import save_netcdf

    attrs, scores = fitted.attrs, fitted.scores
    vcoords = {k: c for k, c in ds.coords.items() if c.dims == ("voxel",)}
    model = fitted.model.assign_coords(vcoords)
    model.attrs.update(attrs)
    files = [save_netcdf(model, out / "model.nc")]
    sc = xr.Dataset({k: ("voxel", np.asarray(v)) for k, v in scores.items()},
                    coords=vcoords, attrs=attrs)
    for name, values in fitted.voxel_vars.items():
        sc[name] = values if isinstance(values, xr.Variable) else ("voxel", values)
    if "band_weights" in model:  # the split R^2 as one (feature_space, voxel) variable too
        names = [str(n) for n in model["feature_space"].values]
        sc["r2_split"] = (("feature_space", "voxel"),
                          np.stack([np.asarray(scores[f"r2_split_{n}"]) for n in names]))
        sc = sc.assign_coords(feature_space=names)
    files.append(save_netcdf(sc, out / "scores.nc"))
    cols = list(rows[0])
    csv = "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows])
    files.append(write_text_atomic(out / "roi_table.csv", csv + "\n"))
    for name, obj in fitted.extra.items():
        files.append(save_netcdf(obj, out / name))
    if maps and {"i", "j", "k"} <= set(ds.coords) and "affine" in ds.attrs:
        files += _maps(ds, scores, fitted.log_alpha, out, label)
    return files


def _maps(ds, scores, log_alpha, out: Path, label: str) -> list[Path]:
    import matplotlib.pyplot as plt

    from brainmodels import brainmaps

    files = []
    split = {k: v for k, v in scores.items() if k.startswith("r2_split_")}
    alpha = () if log_alpha is None else (("log10_alpha", log_alpha),)
    for name, values in (("correlation", scores["correlation"]),
                         ("normalized_score", scores["normalized_score"]),
                         *alpha, *split.items()):

        files.append(brainmaps.save_nifti(brainmaps.to_nifti(values, ds, fill=0.0),
                                          out / f"{name}.nii.gz"))
    for name, values in split.items():  # which space explains which voxel, one map per space
        space = name[len("r2_split_"):]
        fig = brainmaps.plot_brain_map(
            values, ds, kind="stat", cmap="RdBu_r", vmax=1.0, symmetric_cbar=True,
            threshold=_SPLIT_THRESHOLD, title=f"held-out R^2 explained by {space} (split R^2; "
                                              f"|value| > {_SPLIT_THRESHOLD} shown)",
            output_file=out / f"{name}.png")
        plt.close(fig)
        files.append(out / f"{name}.png")
    # r is signed: a diverging colormap centred on 0, and the threshold said in the title
    title = (f"held-out r ({label}); |r| > {_MAP_THRESHOLD} shown, "
             "negative in blue")
    fig = brainmaps.plot_brain_map(scores["correlation"], ds, kind="stat", cmap="RdBu_r",
                                   title=title, threshold=_MAP_THRESHOLD, vmax=1.0,
                                   symmetric_cbar=True, output_file=out / "correlation.png")
    plt.close(fig)
    fig = brainmaps.plot_surface_map(scores["correlation"], ds, title=title,
                                     threshold=_MAP_THRESHOLD, vmax=1.0,
                                     output_file=out / "correlation_surface.png")
    plt.close(fig)
    return [*files, out / "correlation.png", out / "correlation_surface.png"]


#: |r| below which the correlation maps show no colour
_MAP_THRESHOLD = 0.1
#: |split R^2| below which the split maps show no colour
_SPLIT_THRESHOLD = 0.02


def run_encode(ds, feature_spaces, out_dir, *, model: str = "ridge", cv: Any = "loo",
               alphas: Any = None, seed: int = 0, test_fraction: float = 0.2,
               voxel_batch: int = 1024, maps: bool = True, verbose: bool = True,
               banded: bool = False, n_iter: int = 20, client: Any = None,
               voxel_chunk: int | None = None, max_steps: int | None = None,
               progress: bool | None = None) -> dict:
    """Fit a voxel encoder on ``ds`` and write the model, scores, table and maps.

    Parameters
    ----------
    ds : xarray.Dataset
        ``betas (trial, voxel)``, ``stimulus_id (trial)``, feature spaces ``features_<name>
        (stimulus, feature_<name>)``; optional voxel coords ``roi``, ``roi_kind``, ``i, j, k``
        and attrs ``affine``/``volume_shape`` (for the maps), ``noise_ceiling`` (ground truth).
    feature_spaces : list of str or path
        For ``ridge`` and ``in-context``: names (``features_<name>``) or ``.npy`` files
        (stimulus, feature); concatenated and z-scored on the training stimuli. For
        ``attention`` and ``factorized``: one entry, ``"map"`` (the dataset's Gabor-energy map,
        :func:`brainmodels.datasets.feature_map`, positions in degrees) or a ``.npy`` file
        (stimulus, y, x, channel) (positions in grid units).
    out_dir : path
        Output folder (created; every file is written atomically). For the whole folder at
        once (all files or none, as the ``brainmodels encode`` command does), write into
        :func:`brainmodels._io.output_dir`'s temporary folder: ``with output_dir(out) as tx:
        run_encode(ds, spaces, tx.path)``.
    model : str
        A key of :data:`MODELS`: ``"ridge"`` (default), ``"attention"``, ``"factorized"`` or
        ``"in-context"``. The gradient-trained ones are fitted on the voxels that are not
        constant over the training stimuli (the others predict their constant and score 0;
        ``fitted`` False in ``model.nc``) and write ``history.nc`` too; ``attention`` writes
        ``attention.nc`` (the attention maps of up to 16 held-out stimuli), ``factorized`` the
        receptive fields ``rf_x, rf_y, rf_size`` (NaN for unfitted voxels) into ``model.nc``
        and ``scores.nc``.
    cv, alphas
        Passed to :class:`~brainmodels.encoders.RidgeEncoder` (defaults: ``"loo"``,
        ``logspace(-2, 6, 17)``); ridge only.
    seed : int
        Seeds the train/test split of the stimuli (and the band-weight candidates, or the
        gradient-trained encoder).
    banded : bool
        Fit a :class:`~brainmodels.encoders.BandedRidgeEncoder` with one band per feature
        space (``n_iter`` candidates; ``cv`` must be K folds) and add the held-out R^2 split
        over the spaces (``r2_split_<space>``) and the band weights to scores, table and maps.
    client, voxel_chunk
        A dask client to fit the banded encoder's voxel chunks on, and the chunk size.
    max_steps : int or None
        Training steps at most of a gradient-trained encoder (None: its default).
    progress : bool or None
        The gradient-trained encoder's progress bar (with the validation r) on stderr; None:
        when stderr is a terminal.

    Returns
    -------
    dict
        ``rows`` (per-ROI table rows), ``files`` (written paths), ``table`` (printed text),
        ``scores`` (per-voxel arrays), ``encoder`` (the fitted encoder).

    Raises
    ------
    ValueError
        An unknown ``model``; ridge options (``banded``, ``client``) with another model; flat
        feature spaces for a spatial model, or a feature map that is not 4-D.
    """
    import time
    import warnings

    from brainmodels.cli._common import format_table

    t0 = time.perf_counter()
    for need in ("betas", "stimulus_id"):
        if need not in ds:
            raise ValueError(f"the dataset needs a {need!r} variable; it has {list(ds.variables)}")
    _check_inputs(model, feature_spaces)
    say = print if verbose else (lambda *a, **k: None)
    if model == "ridge":
        fitted = encode_ridge(ds, feature_spaces, cv=cv, alphas=alphas, seed=seed,
                               test_fraction=test_fraction, voxel_batch=voxel_batch,
                               banded=banded, n_iter=n_iter, client=client,
                               voxel_chunk=voxel_chunk, say=say)
        label, who = "+".join(map(str, feature_spaces)), ""
    else:
        if banded or client is not None or voxel_chunk is not None:
            raise ValueError(f"banded=, client= and voxel_chunk= are banded ridge options; "
                             f"model={model!r} does not read them")
        fitted = encode_neural(ds, model, feature_spaces, seed=seed,
                                test_fraction=test_fraction, max_steps=max_steps,
                                show_progress=sys.stderr.isatty() if progress is None
                                else progress, say=say)
        label = f"{model}, {'+'.join(map(str, feature_spaces))}"
        who = f" of {model} ({MODELS[model].estimator})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = _table(ds, fitted.scores)
    table = format_table(rows)
    say(f"held-out scores{who} on {fitted.test.size} stimuli ({fitted.n_held} single trials); "
        f"above chance = {CHANCE}; ceiling = sqrt of the bias-corrected explainable variance "
        f"from repeats; r/ceiling over voxels with ceiling >= 0.1:")
    say(table)
    files = _write(ds, fitted, rows, Path(out_dir), label=label, maps=maps)
    say(f"{len(files)} files ready in {time.perf_counter() - t0:.1f} s")
    return {"rows": rows, "files": files, "table": table, "scores": fitted.scores,
            "encoder": fitted.encoder}
