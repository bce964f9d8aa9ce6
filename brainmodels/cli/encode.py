"""``brainmodels encode``: fit voxel encoders and report per-ROI scores.

The work is done by :func:`run_encode`, which the ``demo`` command calls too:

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
import dataclasses
import sys
from pathlib import Path
from typing import Any

from brainmodels.cli._common import (
    add_data_arguments,
    add_out_argument,
    add_seed_argument,
    load_fmri_data,
    load_npy,
    progress,
)

#: Chance level used in the table (printed with it).
CHANCE = ("one-sided t-test of r > 0 over the held-out trials, Benjamini-Hochberg FDR q = 0.05 "
          "across voxels")


@dataclasses.dataclass(frozen=True)
class EncodeModel:
    """An encoder ``brainmodels encode --model`` can fit."""

    estimator: str  #: class name in :mod:`brainmodels.encoders`
    inputs: str  #: "flat" (stimulus, feature) spaces or a spatial "map"
    summary: str  #: one line for ``--help``
    example: str  #: one command line for ``--help``

    @property
    def default_features(self) -> str:
        return MAP if self.inputs == "map" else "retinotopic,category"


#: ``--features`` value naming the dataset's spatial (Gabor-energy) feature map
MAP = "map"

#: The encoders of ``--model``, by name.
MODELS = {
    "ridge": EncodeModel(
        "RidgeEncoder", "flat", "ridge regression per voxel, alpha by cross-validation "
        "(closed form; --banded: one penalty per feature space)",
        "brainmodels encode --data synthetic --features retinotopic,category --out enc"),
    "attention": EncodeModel(
        "AttentionRoutingEncoder", "map", "learned ROI queries read the feature map by "
        "cross-attention (where an ROI looks is learned; writes attention.nc)",
        "brainmodels encode --model attention --features map --max-steps 1500 --out enc_att"),
    "factorized": EncodeModel(
        "FactorizedReadout", "map", "per voxel a spatial mask times feature weights "
        "(receptive field rf_x, rf_y, rf_size per voxel)",
        "brainmodels encode --model factorized --out enc_fact"),
    "in-context": EncodeModel(
        "InContextEncoder", "flat", "a transformer meta-trained over the voxels writes each "
        "voxel's linear weights from context examples",
        "brainmodels encode --model in-context --features retinotopic,category --out enc_icl"),
}

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
    with _DaskClient(args.scheduler) as client:
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


class _DaskClient:
    """The dask client of ``--scheduler`` (None without it), closed on exit with its local
    cluster."""

    def __init__(self, spec):
        self.spec, self.client, self.cluster = spec, None, None

    def __enter__(self):
        if self.spec is None:
            return None
        from brainmodels._deps import require

        distributed = require("dask.distributed", purpose="--scheduler")
        kind, value = self.spec
        if kind == "local":
            self.cluster = distributed.LocalCluster(n_workers=value, threads_per_worker=1,
                                                    processes=True, dashboard_address=None)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(value, timeout="30s")
            except OSError as err:
                raise ValueError(f"--scheduler: no dask scheduler answers at {value} ({err})") \
                    from None
        print(f"dask cluster: {len(self.client.scheduler_info().get('workers', {}))} workers "
              f"({value if kind == 'address' else 'local'})", flush=True)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


# ----------------------------------------------------------------------------- the job


def _n_stimuli(ds) -> int:
    return ds.sizes["stimulus"] if "stimulus" in ds.dims else int(ds["stimulus_id"].max()) + 1


def _feature_matrix(ds, spaces) -> tuple[Any, list[str], list[int]]:
    """(stimulus, feature) design from names (``features_<name>``) or .npy paths, the feature
    names and the number of features of each space."""
    import numpy as np

    n_stim = _n_stimuli(ds)
    blocks, names = [], []
    for space in spaces:
        if isinstance(space, str) and f"features_{space}" in ds:
            block = np.asarray(ds[f"features_{space}"].values, dtype=np.float32)
        elif isinstance(space, str | Path) and str(space).endswith(".npy"):
            block = load_npy(space, "feature file").astype(np.float32)
        else:
            known = [v[len("features_"):] for v in ds.data_vars if str(v).startswith("features_")]
            hint = (f"; {MAP!r} is the spatial feature map of --model attention or factorized"
                    if str(space) == MAP else "")
            raise ValueError(f"feature space {space!r} is neither a features_<name> variable of "
                             f"the dataset (known: {known}) nor a .npy file{hint}")
        if block.ndim != 2 or block.shape[0] != n_stim:
            raise ValueError(f"feature space {space!r} must be (stimulus, feature) with "
                             f"{n_stim} stimuli, got shape {block.shape}")
        blocks.append(block)
        names += [f"{Path(str(space)).stem}:{i}" for i in range(block.shape[1])]
    if not blocks:
        raise ValueError("give at least one feature space")
    labels = [Path(str(space)).stem for space in spaces]
    if len(set(labels)) != len(labels):
        raise ValueError(f"feature spaces must have distinct names, got {labels}")
    return np.concatenate(blocks, axis=1), names, [b.shape[1] for b in blocks]


def _feature_map(ds, space) -> Any:
    """The spatial feature map ``(stimulus, y, x, channel)``: the dataset's Gabor-energy map
    (a DataArray, positions in degrees) for ``"map"``, else a 4-D .npy (grid positions)."""
    import numpy as np

    if str(space) == MAP:
        from brainmodels.datasets import feature_map

        try:
            return feature_map(ds, "gabor")
        except ValueError as err:
            raise ValueError(f"--features {MAP} is the Gabor-energy map of the dataset's images, "
                             f"which this dataset cannot give ({err}); pass a 4-D .npy "
                             f"(stimulus, y, x, channel) instead") from None
    block = load_npy(space, "feature map file")
    n_stim = _n_stimuli(ds)
    if block.ndim != 4 or block.shape[0] != n_stim:
        raise ValueError(f"feature map file {space} must be 4-D (stimulus, y, x, channel) with "
                         f"{n_stim} stimuli, got shape {block.shape}; a (stimulus, feature) "
                         f"matrix is for --model ridge or in-context")
    return block.astype(np.float32)


def _take(X, idx):
    """Rows ``idx`` of the stimulus axis of a numpy array or DataArray."""
    return X.isel({X.dims[0]: idx}) if hasattr(X, "isel") else X[idx]


def _split(n_stim: int, test_fraction: float, seed: int):
    import numpy as np

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n_stim)
    n_test = max(1, round(test_fraction * n_stim))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _fit(ds, X, train, *, cv, alphas, voxel_batch, bands=None, n_iter=20, seed=0,
         client=None, voxel_chunk=None):
    import numpy as np

    from brainmodels.encoders import BandedRidgeEncoder, RidgeEncoder

    sid = ds["stimulus_id"].values
    Y = _average_repeats(np.asarray(ds["betas"].values, dtype=np.float32), sid, train)
    mu, sd = X[train].mean(0), X[train].std(0)
    sd[sd == 0] = 1.0
    runs = None
    if cv == "runs":  # one "run" per stimulus block is not defined for averaged betas
        raise ValueError("cv='runs' needs time series; use 'loo' or K folds for betas")
    Xz = (X[train] - mu) / sd
    if bands is None:
        enc = RidgeEncoder(alphas=alphas, cv=cv, voxel_batch=voxel_batch, drop_constant=True)
        enc.fit(Xz, Y, runs=runs,
                progress=lambda batches: progress(batches, desc="ridge CV (voxel batches)"))
        return enc, mu, sd
    enc = BandedRidgeEncoder(alphas=alphas, cv=cv, n_iter=n_iter, seed=seed,
                             voxel_batch=voxel_batch, drop_constant=True)
    desc = "banded ridge (voxel chunks)" if client is not None or voxel_chunk else \
        "banded ridge (band-weight candidates)"
    enc.fit(_bands(Xz, bands), Y, client=client, voxel_chunk=voxel_chunk,
            progress=lambda items: progress(items, desc=desc))
    return enc, mu, sd


def _bands(X, bands: dict[str, int]) -> dict[str, Any]:
    """Split the columns of X into the named feature spaces (sizes in order)."""
    import numpy as np

    edges = np.cumsum([0, *bands.values()])
    return {name: X[:, a:b] for name, (a, b) in zip(bands, zip(edges[:-1], edges[1:],
                                                               strict=True), strict=True)}


def _average_repeats(betas, sid, stimuli):
    """Mean response over the trials of each of ``stimuli`` (sorted ids) -> (stimulus, voxel)."""
    import numpy as np

    trials = np.flatnonzero(np.isin(sid, stimuli))
    order = trials[np.argsort(sid[trials], kind="stable")]
    ids = sid[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    missing = np.setdiff1d(stimuli, ids[starts])
    if missing.size:
        raise ValueError(f"stimuli {missing[:10].tolist()} have no trials in betas")
    counts = np.diff(np.r_[starts, ids.size])
    sums = np.add.reduceat(betas[order], starts, axis=0, dtype=np.float64)
    return (sums / counts[:, None]).astype(np.float32)


def _held_out(ds, test):
    """Stimulus ids and betas ``(trial, voxel)`` of the single trials of the ``test`` stimuli."""
    import numpy as np

    sid = ds["stimulus_id"].values
    held = np.isin(sid, test)
    return sid[held], np.asarray(ds["betas"].values[held], dtype=np.float32)


def _scores(ds, Y, pred, split=None, band_weights=None) -> dict:
    """Per-voxel scores of predictions ``pred`` of the held-out single trials ``Y`` (trial,
    voxel); ``split``/``band_weights`` (banded ridge) add the split R^2 and band weight of each
    space."""
    import warnings

    import numpy as np

    from brainmodels.encoders import (
        correlation,
        correlation_pvalues,
        explainable_variance,
        fdr_bh,
        noise_ceiling,
        normalized_score,
        r2,
        repeats_from_trials,
    )

    sid = ds["stimulus_id"].values
    with warnings.catch_warnings():  # constant voxels / tiny ceilings are reported in the table
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.nan_to_num(correlation(Y, pred))
        out = {"correlation": r, "r2": np.nan_to_num(r2(Y, pred))}
        data, _ = repeats_from_trials(ds["betas"].values, sid)
        out["noise_ceiling"] = noise_ceiling(explainable_variance(data, constant="zero"))
        out["normalized_score"] = normalized_score(r, out["noise_ceiling"], min_ceiling=0.1)
    for name, part in (split or {}).items():  # the parts sum to the joint R^2
        out[f"r2_split_{name}"] = np.nan_to_num(part)
        out[f"band_weight_{name}"] = band_weights[name]
    out["pvalue"] = correlation_pvalues(r, int(Y.shape[0]))
    out["above_chance"] = fdr_bh(out["pvalue"], q=0.05)
    if "noise_ceiling" in ds:
        out["true_noise_ceiling"] = np.asarray(ds["noise_ceiling"].values, dtype=np.float64)
    return out


@dataclasses.dataclass
class _Fitted:
    """What one model's fit leaves for the shared report: scores and the files' contents."""

    encoder: Any
    scores: dict
    n_held: int
    test: Any
    model: Any  # xr.Dataset for model.nc, over all voxels
    attrs: dict
    voxel_vars: dict  # extra (voxel,) variables of scores.nc
    extra: dict  # file name -> Dataset/DataArray
    log_alpha: Any = None  # (voxel,) for the log10_alpha map (ridge)


def _encode_ridge(ds, feature_spaces, *, cv, alphas, seed, test_fraction, voxel_batch, banded,
                  n_iter, client, voxel_chunk, say) -> _Fitted:
    import numpy as np

    from brainmodels.data import provenance

    alphas = np.logspace(-2, 6, 17) if alphas is None else np.asarray(alphas)
    X, _, sizes = _feature_matrix(ds, feature_spaces)
    bands = dict(zip((Path(str(s)).stem for s in feature_spaces), sizes, strict=True)) \
        if banded else None
    if banded and (cv == "loo" or len(sizes) < 2):
        raise ValueError("banded=True needs two or more feature spaces and cv = K folds")
    if not banded and (client is not None or voxel_chunk is not None):
        raise ValueError("client= and voxel_chunk= fit the chunks of a banded ridge: pass "
                         "banded=True")
    train, test = _split(X.shape[0], test_fraction, seed)
    what = (f"banded ridge over {len(sizes)} feature spaces ({n_iter} band-weight candidates)"
            if banded else "ridge")
    say(f"fitting {what} on {train.size} repeat-averaged training stimuli, {X.shape[1]} "
        f"features, {ds.sizes['voxel']} voxels, {alphas.size} alphas, cv={cv!r} ...", flush=True)
    enc, mu, sd = _fit(ds, X, train, cv=cv, alphas=alphas, voxel_batch=voxel_batch, bands=bands,
                       n_iter=n_iter, seed=seed, client=client, voxel_chunk=voxel_chunk)
    ids, Y = _held_out(ds, test)
    Xh = (X[ids] - mu) / sd
    split = weights = None
    if bands is None:
        pred = enc.predict(Xh)
    else:  # held-out R^2 split over the spaces
        pred = enc.predict(_bands(Xh, bands))
        parts = np.asarray(enc.score_voxels(_bands(Xh, bands), Y, split=True))
        split = dict(zip(bands, parts, strict=True))
        weights = {name: np.asarray(enc.band_weights_)[i].astype(np.float64)
                   for i, name in enumerate(bands)}
    scores = _scores(ds, Y, pred, split=split, band_weights=weights)
    attrs = provenance("BandedRidgeEncoder" if banded else "RidgeEncoder", seed=seed, params={
        "feature_spaces": [str(s) for s in feature_spaces], "cv": str(cv),
        "alphas": alphas, "test_fraction": test_fraction,
        **({"n_iter": n_iter} if banded else {})}, chance=CHANCE,
        test_stimuli=test.tolist())
    model = enc.to_dataset()  # the dataset's voxel coords are added on writing
    return _Fitted(enc, scores, int(Y.shape[0]), test, model, attrs,
                   {"alphas": np.asarray(model["alphas"].values)}, {},
                   log_alpha=np.log10(model["alphas"].values))


def _encode_neural(ds, model_name, feature_spaces, *, seed, test_fraction, max_steps,
                   show_progress, say) -> _Fitted:
    """Fit one of the gradient-trained encoders on the non-constant voxels and score it."""
    import numpy as np
    import xarray as xr

    from brainmodels import encoders
    from brainmodels.data import provenance

    spec = MODELS[model_name]
    spatial = spec.inputs == "map"
    if spatial:
        X = _feature_map(ds, feature_spaces[0])
        h, w, c = X.shape[1:]
        units = "degrees" if hasattr(X, "isel") else "grid units"
        inputs = f"a feature map of {h} x {w} positions ({units}) x {c} channels"
    else:
        X, _, _ = _feature_matrix(ds, feature_spaces)
        inputs = f"{X.shape[1]} features"
    train, test = _split(X.shape[0], test_fraction, seed)
    sid = ds["stimulus_id"].values
    Y = _average_repeats(np.asarray(ds["betas"].values, dtype=np.float32), sid, train)
    n_vox = Y.shape[1]
    keep = np.flatnonzero(np.ptp(Y, axis=0) > 0)  # as ridge's drop_constant=True
    if keep.size == 0:
        raise ValueError(f"all {n_vox} voxels are constant over the training stimuli; there "
                         f"is nothing to fit")
    vcoords = {k: c for k, c in ds.coords.items() if c.dims == ("voxel",)}
    Yfit = xr.DataArray(Y[:, keep], dims=("stimulus", "voxel"),
                        coords={k: ("voxel", np.asarray(v.values)[keep])
                                for k, v in vcoords.items()})
    kwargs = {"seed": seed, "progress": bool(show_progress)}
    if max_steps is not None:
        kwargs["max_steps"] = int(max_steps)
    enc = getattr(encoders, spec.estimator)(**kwargs)
    if model_name == "in-context":
        need = int(enc.context_sizes[1]) + int(enc.n_query)
        if train.size < need:
            raise ValueError(f"--model in-context meta-trains on episodes of {need} distinct "
                             f"training stimuli (contexts of up to {enc.context_sizes[1]} and "
                             f"{enc.n_query} queries), but the split leaves {train.size}: use "
                             f"more stimuli or a lower test fraction")
    skipped = n_vox - keep.size
    say(f"fitting {model_name} ({spec.estimator}) on {train.size} repeat-averaged training "
        f"stimuli, {inputs}, {keep.size} voxels"
        + (f" ({skipped} constant over them not fitted)" if skipped else "")
        + f", at most {enc.max_steps} steps ...", flush=True)
    if spatial:
        fit_kw = {}
        if model_name == "attention" and "roi" not in Yfit.coords:
            fit_kw["rois"] = np.full(keep.size, "all")
        enc.fit(_take(X, train), Yfit, **fit_kw)
        pred_test = np.asarray(enc.predict(_take(X, test)))
    else:  # z-scored on the training stimuli, as for ridge
        mu, sd = X[train].mean(0), X[train].std(0)
        sd[sd == 0] = 1.0
        enc.fit((X[train] - mu) / sd, Yfit)
        pred_test = np.asarray(enc.predict((X[test] - mu) / sd))
    history = enc.history_
    if history.sizes.get("step") and "test_r" in history:
        say(f"trained {enc.n_steps_} steps; validation r {float(history['test_r'].max()):.3f} "
            f"at the kept step {enc.best_step_}")
    # unfitted (constant) voxels predict their constant, as ridge's do, and score 0
    full = np.broadcast_to(Y.mean(0), (test.size, n_vox)).astype(np.float32)
    full[:, keep] = pred_test
    ids, Yheld = _held_out(ds, test)
    scores = _scores(ds, Yheld, full[np.searchsorted(test, ids)])
    params = {k: v for k, v in enc.get_params().items() if k not in ("checkpoint_dir", "progress")}
    attrs = provenance(spec.estimator, seed=seed, params={
        "model": model_name, "feature_spaces": [str(s) for s in feature_spaces],
        "test_fraction": test_fraction, **params}, chance=CHANCE, test_stimuli=test.tolist(),
        fitted_voxels=int(keep.size))
    model = _all_voxels(enc.to_dataset(), keep, n_vox)
    voxel_vars, extra = {}, {"history.nc": history}
    if model_name == "factorized":
        rf = enc.receptive_fields_
        for name in ("rf_x", "rf_y", "rf_size"):
            values = np.full(n_vox, np.nan)  # unfitted voxels have no receptive field
            values[keep] = rf[name].values
            voxel_vars[name] = xr.Variable("voxel", values, rf[name].attrs)
            model[name] = voxel_vars[name]
    if model_name == "attention":
        shown = test[:16]
        maps = enc.attention_maps(_take(X, shown)).assign_coords(stimulus=shown)
        maps.attrs["stimuli"] = (f"the first {shown.size} held-out stimuli (stimulus: "
                               f"their index in the dataset)")
        extra["attention.nc"] = maps
    return _Fitted(enc, scores, int(Yheld.shape[0]), test, model, attrs, voxel_vars, extra)


def _all_voxels(model, keep, n_vox: int):
    """``model``'s voxel variables, fitted on voxels ``keep``, over all ``n_vox`` voxels: the
    unfitted ones hold 0 (-1 for integers) and ``fitted`` False. The voxel coords are left to
    the caller (the dataset's)."""
    import numpy as np
    import xarray as xr

    out = xr.Dataset(attrs=dict(model.attrs))
    for name, var in model.data_vars.items():
        values = np.asarray(var.values)
        if "voxel" in var.dims:
            axis = var.dims.index("voxel")
            shape = list(values.shape)
            shape[axis] = n_vox
            full = np.full(shape, -1 if values.dtype.kind in "iu" else 0, dtype=values.dtype)
            index: list[Any] = [slice(None)] * values.ndim
            index[axis] = keep
            full[tuple(index)] = values
            values = full
        out[name] = xr.Variable(var.dims, values, var.attrs)
    for name, coord in model.coords.items():
        if "voxel" not in coord.dims and name not in out.coords:
            out = out.assign_coords({name: coord.variable})
    fitted = np.zeros(n_vox, bool)
    fitted[keep] = True
    out["fitted"] = ("voxel", fitted)
    return out


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


def _write(ds, fitted: _Fitted, rows, out: Path, *, label: str, maps: bool) -> list[Path]:
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
        fitted = _encode_ridge(ds, feature_spaces, cv=cv, alphas=alphas, seed=seed,
                               test_fraction=test_fraction, voxel_batch=voxel_batch,
                               banded=banded, n_iter=n_iter, client=client,
                               voxel_chunk=voxel_chunk, say=say)
        label, who = "+".join(map(str, feature_spaces)), ""
    else:
        if banded or client is not None or voxel_chunk is not None:
            raise ValueError(f"banded=, client= and voxel_chunk= are banded ridge options; "
                             f"model={model!r} does not read them")
        fitted = _encode_neural(ds, model, feature_spaces, seed=seed,
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
