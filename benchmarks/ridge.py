"""Voxelwise ridge: brainmodels RidgeEncoder against himalaya and scikit-learn, same process.

Usage::

    python benchmarks/ridge.py            # issue sizes: n=3000, p=512, v=20000, 15 alphas
    python benchmarks/ridge.py --quick    # n=1000, p=128, v=4000
    python benchmarks/ridge.py --memory   # also: peak RSS of a v=100,000 fit in a subprocess

Prints, for K-fold (5 folds, vs himalaya ``RidgeCV`` on its numpy backend) and exact
leave-one-out (vs scikit-learn ``RidgeCV(alpha_per_target=True)``, which runs in float64):
median wall times over ``--repeats`` runs (after one warm-up run of ours, which compiles),
the speed-up, the agreement of the per-voxel alphas, the held-out R^2 difference, and our
achieved GFLOP/s against the machine's measured float32 matmul rate (the limit), and the CPU
seconds of each side (``time.process_time``, all threads), which a shared machine disturbs less
than wall time. Timings on a shared machine are noisy; the medians are what to quote. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def _data(n, p, v, n_test, seed=0):
    """float32 X and Y = X W + noise, built in place (no float64 copy of Y)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_test, p), dtype=np.float32)
    W = rng.standard_normal((p, v), dtype=np.float32) * rng.uniform(0, 0.1, v).astype(np.float32)
    Y = X @ W
    del W
    for start in range(0, v, 8192):
        block = Y[:, start:start + 8192]
        block += rng.standard_normal(block.shape, dtype=np.float32)
    return X[:n], Y[:n], X[n:], Y[n:]


_CPU: dict[str, list[float]] = {}


def _median_time(fn, repeats, label=None):
    """Median wall time of ``repeats`` calls; CPU seconds (all threads) go to ``_CPU[label]``."""
    t = median_time(fn, repeats)
    if label:
        _CPU[label] = t.cpu
    return t.median, t.times, t.out


def _cpu(label):
    return f"{statistics.median(_CPU[label]):.1f} CPU-s"


def matmul_gflops(size=2048, repeats=5) -> float:
    """The machine's float32 matmul rate (JAX/XLA on all cores): the stated limit."""
    import jax
    import jax.numpy as jnp

    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), dtype=jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t, _, _ = _median_time(lambda: f(a).block_until_ready(), repeats)
    return 2 * size**3 / t / 1e9


def kfold_flops(n, p, v, n_alphas, folds=5) -> float:
    """Multiply-adds x 2 of our K-fold path: per fold U^T Y and one test product per alpha,
    plus the decompositions (eigh counted as 9 p^3) and the refit."""
    k = min(p, n - n // folds)
    n_te, n_tr = n // folds, n - n // folds
    per_fold = 2 * n_tr * p * p + 9 * p**3 + 2 * n_te * p * k + 2 * n_tr * k * v \
        + n_alphas * 2 * n_te * k * v
    refit = 2 * n * p * p + 9 * p**3 + 2 * n * k * v + 2 * p * k * v
    return folds * per_fold + refit


def loo_flops(n, p, v, n_alphas) -> float:
    k = min(n, p)
    return 2 * (2 * n * p * p + 9 * p**3) + 2 * n * k * v + n_alphas * (2 * n * k * v + 2 * n * k) \
        + 2 * n * k * v + 2 * p * k * v


def _r2(Y, P):
    return 1 - ((Y - P) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)


def bench_kfold(X, Y, Xte, Yte, alphas, repeats, peak):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV

    from brainmodels.encoders import RidgeEncoder

    set_backend("numpy")
    ours = lambda: RidgeEncoder(alphas=alphas, cv=5).fit(X, Y)  # noqa: E731
    t0 = time.perf_counter()
    ours()
    warm = time.perf_counter() - t0
    t_ours, all_ours, enc = _median_time(ours, repeats, 'kfold-ours')
    theirs = lambda: HimalayaRidgeCV(alphas=alphas, cv=5, fit_intercept=True).fit(X, Y)  # noqa: E731
    t_ref, all_ref, ref = _median_time(theirs, repeats, 'kfold-ref')
    agree = np.isclose(enc.alphas_, ref.best_alphas_, rtol=1e-4)
    same = agree.mean()
    diff = np.abs(_r2(Yte, enc.predict(Xte)) - _r2(Yte, ref.predict(Xte)))
    dr2 = f"{diff.max():.2e} (median {np.median(diff):.1e}; {diff[agree].max():.1e} where the alphas agree)"
    gflops = kfold_flops(*X.shape, Y.shape[1], len(alphas)) / t_ours / 1e9
    print(f"K-fold (5 folds): ours {t_ours:.2f} s (runs {_fmt(all_ours)}; first run with "
          f"compilation {warm:.2f} s), himalaya numpy {t_ref:.2f} s (runs {_fmt(all_ref)})")
    print(f"  speed-up x{t_ref / t_ours:.2f} wall; CPU time ours {_cpu('kfold-ours')}, himalaya "
          f"{_cpu('kfold-ref')}; same alphas {100 * same:.2f} % of voxels; "
          f"max |held-out R2 difference| {dr2}")
    print(f"  ours: {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f} % of the measured matmul "
          f"rate; solver {enc.solver_}")


def bench_loo(X, Y, alphas, repeats, peak):
    from sklearn.linear_model import RidgeCV

    from brainmodels.encoders import RidgeEncoder

    ours = lambda: RidgeEncoder(alphas=alphas, cv="loo").fit(X, Y)  # noqa: E731
    t0 = time.perf_counter()
    ours()
    warm = time.perf_counter() - t0
    t_ours, all_ours, enc = _median_time(ours, repeats, 'loo-ours')
    theirs = lambda: RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)  # noqa: E731
    t_ref, all_ref, ref = _median_time(theirs, repeats, 'loo-ref')
    same = np.isclose(enc.alphas_, ref.alpha_, rtol=1e-6).mean()
    gflops = loo_flops(*X.shape, Y.shape[1], len(alphas)) / t_ours / 1e9
    print(f"LOO: ours {t_ours:.2f} s (runs {_fmt(all_ours)}; first run with compilation "
          f"{warm:.2f} s), scikit-learn RidgeCV(alpha_per_target=True) {t_ref:.2f} s "
          f"(runs {_fmt(all_ref)})")
    print(f"  speed-up x{t_ref / t_ours:.2f} wall; CPU time ours {_cpu('loo-ours')}, "
          f"scikit-learn {_cpu('loo-ref')}; same alphas {100 * same:.2f} % of voxels "
          f"(ours float32, scikit-learn float64)")
    print(f"  ours: {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f} % of the measured matmul rate")


def _fmt(times):
    return ", ".join(f"{t:.1f}" for t in times)


def memory_child(n, p, v, n_alphas, cv, batch):
    """Run in a subprocess: fit v voxels and report this process's peak RSS."""
    from brainmodels.encoders import RidgeEncoder

    X, Y, _, _ = _data(n, p, v, 0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"  peak RSS after making the data (before the fit): {before:.2f} GiB", flush=True)
    t0 = time.perf_counter()
    RidgeEncoder(alphas=np.logspace(-2, 8, n_alphas), cv=cv, voxel_batch=batch).fit(X, Y)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"  fit {time.perf_counter() - t0:.1f} s; Y alone is {Y.nbytes / 1e9:.2f} GB; "
          f"peak RSS {rss:.2f} GiB", flush=True)


def bench_memory(n, p, v, n_alphas, cv, batch):
    print(f"memory: n={n}, p={p}, v={v}, {n_alphas} alphas, cv={cv}, voxel_batch={batch} "
          "(subprocess)", flush=True)
    cmd = [sys.executable, __file__, "--memory-child", "--n", str(n), "--p", str(p), "--v",
           str(v), "--alphas", str(n_alphas), "--cv", str(cv), "--voxel-batch", str(batch)]
    subprocess.run(cmd, check=True)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"  peak RSS of the child (getrusage RUSAGE_CHILDREN): {rss:.2f} GiB "
          f"({'under' if rss < 4 else 'OVER'} the 4 GB goal)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n=1000, p=128, v=4000")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--p", type=int, default=512)
    parser.add_argument("--v", type=int, default=20000)
    parser.add_argument("--alphas", type=int, default=15, help="number of alphas (logspace -2..8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (median)")
    parser.add_argument("--skip", choices=["kfold", "loo"], action="append", default=[])
    parser.add_argument("--memory", action="store_true", help="peak memory at v=100,000")
    parser.add_argument("--memory-v", type=int, default=100_000)
    parser.add_argument("--cv", default="5")
    parser.add_argument("--voxel-batch", type=int, default=1024)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        cv = int(args.cv) if args.cv.isdigit() else args.cv
        memory_child(args.n, args.p, args.v, args.alphas, cv, args.voxel_batch)
        return 0
    if args.quick:
        args.n, args.p, args.v = 1000, 128, 4000
    alphas = np.logspace(-2, 8, args.alphas)
    import jax

    peak = matmul_gflops()
    print(f"machine: {jax.devices()[0].device_kind}, float32 matmul {peak:.1f} GFLOP/s "
          f"(2048^3, median of 5); sizes n={args.n}, p={args.p}, v={args.v}, "
          f"{args.alphas} alphas; median of {args.repeats} runs per side", flush=True)
    X, Y, Xte, Yte = _data(args.n, args.p, args.v, n_test=max(200, args.n // 5))
    if "kfold" not in args.skip:
        bench_kfold(X, Y, Xte, Yte, alphas, args.repeats, peak)
    if "loo" not in args.skip:
        bench_loo(X, Y, alphas, args.repeats, peak)
    if args.memory:
        bench_memory(args.n, args.p, args.memory_v, args.alphas, args.cv, args.voxel_batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
