"""``brainmodels demo``: the main job end to end on the embedded synthetic dataset.

1. generate the NSD-like synthetic fMRI dataset (ground truth known),
2. write it (netCDF), its brain mask (NIfTI) and a noise-ceiling brain map (PNG),
3. fit voxelwise ridge encoders on the ground-truth feature spaces and print the per-ROI table
   (median held-out score, fraction of voxels above chance, noise ceiling), writing the model,
   scores and maps,
4. compute the representations of the stimuli from one model of every family (Gabor energy,
   random features, whitening circuit, Kuramoto grid, AKOrN, wave-RNN, spiking network),
5. compare every layer with every ROI by encoding and RSA (noise ceilings), print the table and
   write ``brain/models_brain.nc``, the figures and ``brain/report.html``.
"""

from __future__ import annotations

import time

from brainmodels.cli._common import add_out_argument, add_seed_argument


def register(sub) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on the embedded synthetic dataset (writes demo_output/)",
        description=(
            "Generate the synthetic NSD-like fMRI dataset (ground-truth weights, ROIs, repeats and a "
            "known noise ceiling), save it with a brain map, then fit voxelwise ridge encoders on the "
            "ground-truth feature spaces and print per-ROI scores against the noise ceiling."
        ),
    )
    add_out_argument(parser, "demo_output")
    add_seed_argument(parser)
    parser.add_argument("--n-stimuli", type=int, default=1000, help="unique stimuli (default 1000)")
    parser.add_argument(
        "--resolution", type=float, default=8.0, metavar="MM",
        help=("voxel size in mm of the MNI152 mask (default 8 -> ~3.7k voxels and ~50 MB of "
              "output; 4 -> ~29k voxels, ~0.4 GB)"),
    )
    parser.add_argument(
        "--skip-encode", action="store_true", help="only generate and save the dataset"
    )
    parser.add_argument(
        "--skip-models", action="store_true",
        help="skip steps 4-5 (model representations compared with the brain, report.html)"
    )
    parser.add_argument(
        "--small", action="store_true",
        help="smaller models and shorter simulations (a quick check of the whole pipeline)"
    )
    parser.set_defaults(func=run)


def _summary(ds) -> str:
    import numpy as np

    rois, counts = np.unique(ds["roi"].values, return_counts=True)
    lines = [
        f"  stimuli {ds.sizes['stimulus']}, trials {ds.sizes['trial']}, voxels {ds.sizes['voxel']}, "
        f"runs {len(np.unique(ds['run'].values))}",
        "  ROIs: " + ", ".join(f"{r} ({c})" for r, c in zip(rois, counts, strict=True)),
    ]
    if "noise_ceiling" in ds:
        resp = ds["noise_ceiling"].values[ds["roi"].values != "none"]
        if resp.size:
            lines.append(
                f"  true noise ceiling (correlation) in responsive voxels: median {np.median(resp):.3f}"
            )
    return "\n".join(lines)


def run(args) -> int:
    from brainmodels import brainmaps
    from brainmodels.data import save_netcdf
    from brainmodels.datasets import make_synthetic_fmri

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"[1/5] generating the synthetic fMRI dataset (seed {args.seed}) ...", flush=True)
    ds = make_synthetic_fmri(
        n_stimuli=args.n_stimuli, resolution_mm=args.resolution, seed=args.seed
    )
    print(f"      done in {time.perf_counter() - t0:.1f} s")
    print(_summary(ds))

    print("[2/5] writing the dataset, its mask and a noise-ceiling map ...", flush=True)
    files = [save_netcdf(ds, out / "synthetic_fmri.nc")]
    files.append(brainmaps.save_nifti(brainmaps.mask_image(ds), out / "mask.nii.gz"))
    files.append(brainmaps.save_nifti(brainmaps.to_nifti(ds["noise_ceiling"], ds),
                                      out / "noise_ceiling.nii.gz"))
    brainmaps.plot_brain_map(
        ds["noise_ceiling"], ds, title="true noise ceiling (r)", cmap="hot",
        output_file=out / "noise_ceiling.png",
    )
    files.append(out / "noise_ceiling.png")

    if not args.skip_encode:
        try:
            from brainmodels.cli.encode import run_encode
        except ImportError:
            print("[3/5] (the encoders are not part of this build; skipping the fit)")
        else:
            print("[3/5] fitting voxelwise ridge encoders on the ground-truth feature spaces ...",
                  flush=True)
            result = run_encode(ds, ["retinotopic", "category"], out / "encode", seed=args.seed)
            files += list(result.get("files", []))
    if not (args.skip_encode or args.skip_models):
        from brainmodels.cli._demo_brain import run_brain

        files += run_brain(ds, out / "brain", seed=args.seed, small=args.small)
    # `out` is the command's temporary folder; brainmodels.cli lists the files once it is in place
    print(f"\n{len(files)} files ready in {time.perf_counter() - t0:.1f} s")
    return 0
