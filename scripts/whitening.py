"""Adaptive whitening with gain-modulating interneurons: context switches, and the sign-
constrained circuit against the free one on an ill-conditioned input (condition number 1e3).

A thin wrapper over :mod:`brainmodels.whitening`: writes ``contexts.nc`` / ``.png`` (error
curves, gain trajectories, output spectra through context switches) and ``stability.nc`` /
``stability.png`` (smallest eigenvalue of M = I + W diag(g) W^T and the error, free against
g >= 0, over learning rates) into ``--out`` (all or nothing).

Usage: python scripts/whitening.py [--n 4] [--contexts 3] [--seeds 4] [--out whitening_script]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 4
    contexts: int = 3
    condition: float = 10.0
    samples: int = 50_000
    seeds: int = 4
    seed: int = 0
    lrs: tuple[float, ...] = (0.01, 0.05, 0.2)
    out: Path = Path("whitening_script")


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=Config.n)
    p.add_argument("--contexts", type=int, default=Config.contexts)
    p.add_argument("--condition", type=float, default=Config.condition)
    p.add_argument("--samples", type=int, default=Config.samples)
    p.add_argument("--seeds", type=int, default=Config.seeds)
    p.add_argument("--seed", type=int, default=Config.seed)
    p.add_argument("--out", type=Path, default=Config.out)
    return Config(**vars(p.parse_args(argv)))


def stability(cfg: Config):
    """Free against nonneg gains, sample by sample, on a covariance of condition number 1e3."""
    import jax
    import numpy as np
    import xarray as xr

    from brainmodels import whitening as wh
    from brainmodels.data import provenance

    key = jax.random.key(cfg.seed)
    W = wh.random_frame(cfg.n, 2 * wh.n_symmetric(cfg.n), key=key)
    c = wh.random_covariance(cfg.n, 1e3, key=jax.random.fold_in(key, 99))
    x = np.asarray(jax.random.normal(jax.random.fold_in(key, 100), (cfg.samples, cfg.n)),
                   np.float64) @ np.linalg.cholesky(c).T
    rows = []
    for lr in cfg.lrs:
        for nonneg in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r = wh.adapt(W, x, lr=lr, batch_size=1, nonneg=nonneg, cov=c)
            part = r[["error", "min_eigenvalue"]].expand_dims(lr=[lr], nonneg=[nonneg])
            part.attrs = {}
            rows.append(part)
    out = xr.combine_by_coords(rows)
    out.attrs = provenance("whitening.stability", params={"n": cfg.n, "condition": 1e3,
                                                          "samples": cfg.samples,
                                                          "batch_size": 1}, seed=cfg.seed)
    return out


def main(argv=None) -> int:
    cfg = parse_args(argv)
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from brainmodels import whitening as wh
    from brainmodels._io import output_dir, savefig_atomic
    from brainmodels.data import save_netcdf

    key = jax.random.key(cfg.seed)
    W = wh.random_frame(cfg.n, 2 * wh.n_symmetric(cfg.n), key=key)
    covs = np.stack([wh.random_covariance(cfg.n, cfg.condition, key=jax.random.fold_in(key, c))
                     for c in range(1, cfg.contexts + 1)])
    ctx = wh.switch_contexts(W, covs, n_samples=cfg.samples, lr=0.05, batch_size=50,
                             lr_decay=0.005, seeds=range(cfg.seed, cfg.seed + cfg.seeds))
    stab = stability(cfg)
    print("samples to re-whiten (max over seeds), per context:",
          ctx.samples_to_threshold.max("seed").values.tolist())
    for lr in cfg.lrs:
        for nonneg in (False, True):
            s = stab.sel(lr=lr, nonneg=nonneg)
            print(f"lr {lr:5.2f} nonneg={nonneg!s:5}: min eig(M) {float(s.min_eigenvalue.min()):10.3g}"
                  f"   final error {float(s.error[-1]):.3g}")
    argv = sys.argv[1:] if argv is None else list(argv)
    with output_dir(cfg.out, command=["python", "scripts/whitening.py", *argv]) as tx:
        save_netcdf(ctx, tx.path / "contexts.nc")
        save_netcdf(stab, tx.path / "stability.nc")
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
        wh.plot_error(ctx, ax=axes[0])
        wh.plot_gains(ctx, ax=axes[1])
        wh.plot_spectrum(ctx.isel(context=-1), ax=axes[2])
        savefig_atomic(fig, tx.path / "contexts.png", dpi=120, bbox_inches="tight")
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for i, lr in enumerate(cfg.lrs):
            for nonneg, style in ((False, "-"), (True, "--")):
                m = stab.min_eigenvalue.sel(lr=lr, nonneg=nonneg)
                ax.plot(stab.step, np.sign(m) * np.log10(1 + np.abs(m)), style, color=f"C{i}",
                        label=f"lr {lr:g}{', g >= 0' if nonneg else ''}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xlabel="samples", ylabel="sign * log10(1 + |min eig M|)",
               title="stability, condition number 1e3")
        ax.legend(frameon=False, fontsize=7)
        savefig_atomic(fig, tx.path / "stability.png", dpi=120, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
