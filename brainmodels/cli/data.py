"""``brainmodels data``: make the synthetic dataset, or summarise a dataset on disk.

* ``brainmodels data synthetic --out DIR``: the synthetic NSD-like fMRI dataset as netCDF
  (``synthetic_fmri.nc``), its brain mask and ROI labels as NIfTI, and the ROI label table;
  ``--bold`` adds the BOLD time-series variant (``synthetic_bold.nc``).
* ``brainmodels data info PATH``: what a dataset holds (a netCDF written by brainmodels, an
  Algonauts 2023 folder, a BIDS folder, a NIfTI image).
* ``brainmodels data bids ROOT --subject S --task T --out DIR``: single-trial betas from a BIDS
  dataset (raw, or fMRIPrep derivatives with confounds) as ``DIR/betas.nc`` (trial x voxel,
  with stimulus, run and voxel coordinates; open with ``brainmodels.data.load_netcdf``).
"""

from __future__ import annotations

import time

from brainmodels.cli._common import add_out_argument, add_seed_argument, format_table, progress


def register(sub) -> None:
    parser = sub.add_parser(
        "data",
        help="make the synthetic fMRI dataset or summarise a dataset on disk",
        description="Make the synthetic fMRI dataset (with ground truth) or summarise a dataset.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    syn = actions.add_parser(
        "synthetic",
        help="write the synthetic NSD-like fMRI dataset (netCDF + NIfTI mask and ROIs)",
        description=(
            "Generate the synthetic fMRI dataset: procedural images, voxels on the MNI152 brain "
            "mask with retinotopic (V1-V4) and category ROIs, spatially smooth ground-truth "
            "weights, repeats with noise and the true noise ceiling. Writes DIR/synthetic_fmri.nc "
            "(open with brainmodels.data.load_netcdf), DIR/synthetic_fmri_mask.nii.gz, "
            "DIR/synthetic_fmri_rois.nii.gz and DIR/synthetic_fmri_rois.tsv (label -> ROI name). "
            "Every file is written atomically."
        ),
    )
    add_out_argument(syn, "synthetic_data")
    add_seed_argument(syn)
    syn.add_argument("--n-stimuli", type=int, default=1000, metavar="N",
                     help="unique images (default: 1000)")
    syn.add_argument("--repeats", type=int, default=3, metavar="R",
                     help="presentations of each image (default: 3)")
    syn.add_argument("--resolution", type=float, default=4.0, metavar="MM",
                     help="voxel size of the MNI152 mask in whole mm (default: 4 -> 29,398 voxels)")
    syn.add_argument("--image-size", type=int, default=32, metavar="PX",
                     help="image side in pixels, divisible by 8 (default: 32)")
    syn.add_argument("--bold", action="store_true",
                     help="also write the BOLD time-series variant (SPM HRF) to synthetic_bold.nc")
    syn.add_argument("--tr", type=float, default=2.0, metavar="S",
                     help="repetition time of the --bold variant in s (default: 2)")
    syn.set_defaults(func=run_synthetic)
    info = actions.add_parser(
        "info",
        help="summarise a dataset (netCDF, Algonauts 2023 folder, BIDS folder, NIfTI)",
        description="Print what a dataset holds: dimensions, trials, repeats, ROIs and voxels.",
    )
    info.add_argument("path", help="a .nc file, a .nii(.gz) image, an Algonauts or BIDS folder")
    info.add_argument("--ceiling", action="store_true",
                      help="also estimate the noise ceiling per ROI from the repeats (netCDF)")
    info.set_defaults(func=run_info)
    bids = actions.add_parser(
        "bids",
        help="single-trial betas from a BIDS dataset (raw or fMRIPrep derivatives) to netCDF",
        description=(
            "Estimate one beta per stimulus and run (LS-A) or per event (LS-S) with nilearn's "
            "first-level GLM, from raw BIDS BOLD runs or fMRIPrep's preprocessed ones "
            "(--derivatives, with --confounds as nuisance regressors); the events come from "
            "the raw dataset. Writes DIR/betas.nc atomically."
        ),
    )
    bids.add_argument("root", help="BIDS dataset root (sub-*/[ses-*/]func/*_events.tsv)")
    bids.add_argument("--subject", required=True, help="subject label (with or without sub-)")
    bids.add_argument("--task", required=True, help="task label")
    bids.add_argument("--method", default="lsa", choices=["lsa", "lss"],
                      help="least squares - all (default) or - separate")
    bids.add_argument("--derivatives", default=None, metavar="DIR",
                      help="fMRIPrep output folder: read its preprocessed runs")
    bids.add_argument("--space", default=None,
                      help="output space of the derivatives (needed when there are several)")
    bids.add_argument("--confounds", default=None, metavar="STRATEGY|COLS",
                      help="fMRIPrep confounds through nilearn's load_confounds (needs "
                           "--derivatives): a strategy, simple (motion + derivatives and "
                           "squares, WM/CSF, cosines), scrubbing (the same, high-motion volumes "
                           "censored), compcor, ica_aroma, motion, motion+wm_csf; or "
                           "comma-separated columns of desc-confounds_timeseries.tsv")
    bids.add_argument("--mask", default=None, metavar="NIFTI",
                      help="brain mask on the BOLD grid (default: the runs' brain masks with "
                           "--derivatives, else nilearn's EPI mask of the first run)")
    bids.add_argument("--stimulus-column", default="trial_type",
                      help="events column naming the stimulus (default: trial_type)")
    bids.add_argument("--ignore", default="", metavar="LIST",
                      help="comma-separated stimulus values modelled as nuisance, not estimated")
    bids.add_argument("--smoothing", type=float, default=None, metavar="FWHM",
                      help="spatial smoothing in mm (default: none)")
    add_out_argument(bids, "bids_betas")
    bids.set_defaults(func=run_bids)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser) -> int:
    parser.print_help()
    return 2


def _roi_label_table(ds):
    import numpy as np

    # retinotopic ROIs first (V1, V2, ...), then category ROIs, each alphabetically
    kinds = dict(zip(ds["roi"].values.tolist(), ds["roi_kind"].values.tolist(), strict=True))
    names = sorted((r for r in kinds if r != "none"), key=lambda r: (kinds[r] != "retinotopic", r))
    labels = np.zeros(ds.sizes["voxel"], dtype=np.int16)
    for n, name in enumerate(names, start=1):
        labels[ds["roi"].values == name] = n
    rows = [{"label": n, "roi": name, "kind": kinds[name], "voxels": int((labels == n).sum())}
            for n, name in enumerate(names, start=1)]
    return labels, rows


def run_synthetic(args) -> int:
    from brainmodels import brainmaps
    from brainmodels._io import write_text_atomic
    from brainmodels.data import save_netcdf
    from brainmodels.datasets import make_synthetic_bold, make_synthetic_fmri

    out = args.out
    t0 = time.perf_counter()
    steps = ["generate", "write netCDF", "write NIfTI"] + (["BOLD"] if args.bold else [])
    bar = progress(total=len(steps), desc="synthetic dataset")
    ds = make_synthetic_fmri(args.n_stimuli, args.repeats, image_size=args.image_size,
                             resolution_mm=args.resolution, seed=args.seed)
    t_gen = time.perf_counter() - t0
    bar.update()
    files = [save_netcdf(ds, out / "synthetic_fmri.nc")]
    bar.update()
    labels, rows = _roi_label_table(ds)
    files.append(brainmaps.save_nifti(brainmaps.mask_image(ds), out / "synthetic_fmri_mask.nii.gz"))
    files.append(brainmaps.save_nifti(brainmaps.to_nifti(labels, ds),
                                      out / "synthetic_fmri_rois.nii.gz"))
    tsv = "label\troi\tkind\n" + "".join(f"{r['label']}\t{r['roi']}\t{r['kind']}\n" for r in rows)
    files.append(write_text_atomic(out / "synthetic_fmri_rois.tsv", tsv))
    bar.update()
    if args.bold:
        bold = make_synthetic_bold(resolution_mm=args.resolution, image_size=args.image_size,
                                   tr=args.tr, seed=args.seed)
        files.append(save_netcdf(bold, out / "synthetic_bold.nc"))
        bar.update()
    bar.close()
    print(f"synthetic fMRI (seed {args.seed}): {ds.sizes['stimulus']} stimuli x "
          f"{args.repeats} repeats = {ds.sizes['trial']} trials, {ds.sizes['voxel']} voxels, "
          f"generated in {t_gen:.1f} s ({ds.nbytes / 1e6:.0f} MB in memory)")
    print(format_table(rows))
    print(f"{len(files)} files ready in {time.perf_counter() - t0:.1f} s")
    return 0


def run_info(args) -> int:
    from brainmodels.datasets import describe

    print(describe(args.path, estimate_ceiling=args.ceiling))
    return 0


def run_bids(args) -> int:
    from brainmodels.data import save_netcdf
    from brainmodels.datasets import CONFOUND_SETS, GLMOptions, betas_from_bids

    t0 = time.perf_counter()
    confounds = args.confounds
    if confounds is not None and confounds not in CONFOUND_SETS:
        confounds = [c.strip() for c in confounds.split(",") if c.strip()]
    ignore = [v.strip() for v in args.ignore.split(",") if v.strip()]
    ds = betas_from_bids(args.root, args.subject, args.task, method=args.method,
                         derivatives=args.derivatives, space=args.space, confounds=confounds,
                         mask_img=args.mask, stimulus_column=args.stimulus_column,
                         ignore=ignore, glm=GLMOptions(smoothing_fwhm=args.smoothing),
                         progress=lambda runs: progress(runs, desc="runs"))
    save_netcdf(ds, args.out / "betas.nc")
    print(f"{ds.sizes['trial']} trials of {len(set(ds.stimulus.values.tolist()))} stimuli in "
          f"{len(set(ds.run.values.tolist()))} run(s), {ds.sizes['voxel']} voxels, "
          f"{time.perf_counter() - t0:.1f} s")
    return 0

