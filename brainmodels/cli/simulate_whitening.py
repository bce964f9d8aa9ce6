"""``brainmodels simulate whitening``: a gain-modulating whitening circuit through context switches.

Writes ``whitening.nc`` (error curves, gain trajectories, output/input spectra, samples to
re-whiten per context and seed), ``whitening_error.png``, ``gains.png`` and ``spectrum.png``.
"""

from __future__ import annotations

import argparse

from brainmodels.cli._common import add_out_argument, add_seed_argument, format_table


def register(sub) -> None:
    parser = sub.add_parser(
        "whitening",
        help="adaptive whitening with gain-modulating interneurons (Duong et al. 2023)",
        description=(
            "N primary neurons and K interneurons with fixed random weights W adapt only their\n"
            "gains, g <- g + lr mean(z*z - 1), z = W^T r, r = (I + W diag(g) W^T)^-1 x, until\n"
            "the responses are white. The input covariance switches between --contexts random\n"
            "covariances (condition number --condition); every seed runs in one vmapped call."
        ),
        epilog=("example: brainmodels simulate whitening --n 8 --contexts 3 --seeds 4 --out runs/w\n"
                "outputs: whitening.nc, whitening_error.png, gains.png, spectrum.png"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=4, help="primary neurons N (default: 4)")
    parser.add_argument("--k", type=int, default=0,
                        help="interneurons K (default 0: 2 N(N+1)/2; full whitening needs "
                             ">= N(N+1)/2)")
    parser.add_argument("--contexts", type=int, default=2, help="input contexts (default: 2)")
    parser.add_argument("--condition", type=float, default=10.0,
                        help="condition number of every context's covariance (default: 10)")
    parser.add_argument("--samples", type=int, default=50_000,
                        help="samples per context (default: 50000)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default: 0.05)")
    parser.add_argument("--lr-decay", type=float, default=0.005,
                        help="lr / (1 + decay t) within each context (default: 0.005)")
    parser.add_argument("--batch-size", type=int, default=50,
                        help="samples per gain update (default: 50)")
    parser.add_argument("--nonneg", action="store_true", help="constrain the gains to g >= 0")
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="error counted as whitened (default: 0.1, the paper's)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds, from --seed (default: 1)")
    add_seed_argument(parser)
    add_out_argument(parser, "whitening_output")
    parser.set_defaults(func=run)


def _check(args) -> None:
    for name in ("n", "contexts", "samples", "batch_size", "seeds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be a positive learning rate, got {args.lr}")
    if not args.condition >= 1:
        raise ValueError(f"--condition must be >= 1, got {args.condition}")


def run(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from brainmodels import whitening as wh
    from brainmodels._io import savefig_atomic
    from brainmodels.data import save_netcdf

    _check(args)
    key = jax.random.key(args.seed)
    k = args.k or 2 * wh.n_symmetric(args.n)
    W = wh.random_frame(args.n, k, key=key)
    covs = np.stack([wh.random_covariance(args.n, args.condition,
                                          key=jax.random.fold_in(key, 1 + c))
                     for c in range(args.contexts)])
    ds = wh.switch_contexts(W, covs, n_samples=args.samples, lr=args.lr,
                            batch_size=args.batch_size, nonneg=args.nonneg,
                            seeds=range(args.seed, args.seed + args.seeds),
                            lr_decay=args.lr_decay, threshold=args.threshold)
    ds["W"] = (("neuron", "interneuron"), np.asarray(W))
    out = args.out
    save_netcdf(ds, out / "whitening.nc")
    for name, plot in (("whitening_error.png", wh.plot_error), ("gains.png", wh.plot_gains),
                       ("spectrum.png", wh.plot_spectrum)):
        src = ds.isel(context=-1) if name == "spectrum.png" else ds
        fig = plot(src) if name != "whitening_error.png" else plot(src, threshold=args.threshold)
        savefig_atomic(fig, out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
    end = ds.error.groupby("context").map(lambda e: e.isel(step=-1))
    rows = [{"context": c, "final error": float(end.sel(context=c).mean()),
             "samples to < threshold": float(ds.samples_to_threshold.sel(context=c).max())}
            for c in range(args.contexts)]
    print(format_table(rows))
    if not ds.attrs["stable"]:
        print("warning: the circuit became unstable (M not positive definite); lower --lr or "
              "pass --nonneg")
    return 0
