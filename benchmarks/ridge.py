"""Voxelwise ridge: brainmodels RidgeEncoder against himalaya and scikit-learn, same process.

Usage::

    python benchmarks/ridge.py            # the size sweep (small, medium, large), records
    python benchmarks/ridge.py --quick    # the sweep's small size only
    python benchmarks/ridge.py --single --n 3000 --p 512 --v 20000   # one size, detailed
    python benchmarks/ridge.py --single --memory   # also: peak RSS of a v=100,000 fit

The sweep (n x p x v: 300 x 10 x 300, 1,000 x 100 x 2,000, 3,000 x 512 x 20,000; 15 alphas)
times both methods on both sides cold (the first call in a fresh process: JAX compilation
included, persistent cache off) and warm (median of ``--repeats``), with CPU seconds, and
appends records to ``benchmarks/records/ridge.jsonl``, from which ``python
benchmarks/_records.py`` writes the README table.

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
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _timing import append_records, machine, median_time  # benchmarks/ is on sys.path


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


SWEEP = {"small": (300, 10, 300), "medium": (1000, 100, 2000), "large": (3000, 512, 20000)}
RECORDS = Path(__file__).with_name("records") / "ridge.jsonl"
#: method -> (peer name, peer dtype)
PEERS = {"kfold": ("himalaya RidgeCV (numpy backend)", "float32"),
         "loo": ("scikit-learn RidgeCV(alpha_per_target=True)", "float64")}


def _sweep_fit(method: str, side: str, alphas):
    """A zero-argument fit of one side (the data passed when called)."""
    if side == "brainmodels":
        from brainmodels.encoders import RidgeEncoder

        return lambda X, Y: RidgeEncoder(alphas=alphas, cv=5 if method == "kfold" else "loo"
                                         ).fit(X, Y)
    if method == "kfold":
        from himalaya.backend import set_backend
        from himalaya.ridge import RidgeCV as HimalayaRidgeCV

        set_backend("numpy")
        return lambda X, Y: HimalayaRidgeCV(alphas=alphas, cv=5, fit_intercept=True).fit(X, Y)
    from sklearn.linear_model import RidgeCV

    return lambda X, Y: RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)


def cold_child(size: str, method: str, side: str) -> None:
    n, p, v = SWEEP[size]
    X, Y, _, _ = _data(n, p, v, n_test=max(200, n // 5))
    fit = _sweep_fit(method, side, np.logspace(-2, 8, 15))
    t0, c0 = time.perf_counter(), time.process_time()
    fit(X, Y)
    print(json.dumps(dict(wall=time.perf_counter() - t0, cpu=time.process_time() - c0)))


def _cold(size, method, side) -> dict:
    env = {**os.environ, "BRAINMODELS_JAX_CACHE": "off"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--cold-child", size,
                          method, side], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_sweep_size(size: str, repeats: int) -> list[dict]:
    n, p, v = SWEEP[size]
    X, Y, Xte, Yte = _data(n, p, v, n_test=max(200, n // 5))
    alphas = np.logspace(-2, 8, 15)
    records = []
    for method in ("kfold", "loo"):
        fits, out = {}, {}
        for side in ("brainmodels", "peer"):
            cold = _cold(size, method, side)
            fit = _sweep_fit(method, side, alphas)
            fit(X, Y)  # warm-up (compiles ours)
            t = median_time(lambda f=fit: f(X, Y), repeats)
            fits[side] = t.out
            out[side] = dict(cold_wall=cold["wall"], cold_cpu=cold["cpu"], warm_wall=t.median,
                             warm_cpu=float(np.median(t.cpu)))
        ours, ref = fits["brainmodels"], fits["peer"]
        chosen = ref.best_alphas_ if method == "kfold" else ref.alpha_
        same = float(np.isclose(ours.alphas_, chosen, rtol=1e-4).mean())
        dr2 = float(np.abs(_r2(Yte, ours.predict(Xte)) - _r2(Yte, ref.predict(Xte))).max())
        peer, dtype = PEERS[method]
        for side in ("brainmodels", "peer"):
            records.append(dict(benchmark="ridge", size=size, method=method, side=side,
                                n=n, p=p, v=v, n_alphas=len(alphas),
                                name="brainmodels RidgeEncoder" if side == "brainmodels"
                                else peer, dtype="float32" if side == "brainmodels" else dtype,
                                same_alphas=same, max_abs_r2_difference=dr2, **out[side]))
        o, r = out["brainmodels"], out["peer"]
        print(f"  {size:6s} {n}x{p}x{v} {method:5s} ours cold {o['cold_wall']:.3f} warm "
              f"{o['warm_wall']:.3f} s ({o['warm_cpu']:.2f} CPU-s) | {peer} ({dtype}) cold "
              f"{r['cold_wall']:.3f} warm {r['warm_wall']:.3f} s ({r['warm_cpu']:.2f} CPU-s) | "
              f"x{r['cold_wall'] / o['cold_wall']:.1f} cold, x{r['warm_wall'] / o['warm_wall']:.1f}"
              f" warm; same alphas {same:.1%}, max |dR2| {dr2:.1e}", flush=True)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the sweep's small size only")
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
    parser.add_argument("--single", action="store_true",
                        help="one size (--n/--p/--v), detailed, instead of the sweep")
    parser.add_argument("--sizes", nargs="+", choices=list(SWEEP), default=None)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--cold-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        cv = int(args.cv) if args.cv.isdigit() else args.cv
        memory_child(args.n, args.p, args.v, args.alphas, cv, args.voxel_batch)
        return 0
    if args.cold_child:
        cold_child(*args.cold_child)
        return 0
    import jax

    if not args.single:
        where = machine()
        print(f"machine: {where}", flush=True)
        records = []
        for size in args.sizes or (["small"] if args.quick else list(SWEEP)):
            records += bench_sweep_size(size, args.repeats)
        if not args.no_record:
            append_records(RECORDS, records, where)
        return 0
    alphas = np.logspace(-2, 8, args.alphas)

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
