"""Benchmark brainmodels.rsa against rsatoolbox, in the same process on the same data.

Usage: python benchmarks/rsa.py [--quick] [--repeats N]

Each side runs ``--repeats`` times after one warm-up (JAX compilation excluded, reported
separately); the median wall time is printed with the ratio rsatoolbox / brainmodels. On a shared
machine the timings are noisy: compare ratios, not absolute times. The stochastic shape metric
has no peer on PyPI (netrep is not published) and is timed alone.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import jax
import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's bootstrap progress bar

jax.config.update("jax_enable_x64", True)  # rsatoolbox is float64: compare like with like

warnings.filterwarnings("ignore", category=RuntimeWarning)  # rsatoolbox's descriptor casts
import rsatoolbox  # noqa: E402
from _timing import median_time  # noqa: E402  (benchmarks/ is on sys.path)
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm, compare  # noqa: E402

import brainmodels.rsa as bm  # noqa: E402


def _row(name, t_ref, t_bm, t_compile, err, goal):
    ratio = t_ref / t_bm if t_bm > 0 else float("inf")
    print(f"{name:<42} rsatoolbox {t_ref:8.3f} s  brainmodels {t_bm:8.3f} s  "
          f"(compile {t_compile:6.2f} s)  x{ratio:7.1f}  goal >= {goal}x  max|diff| {err:.1e}")


def bench_compare(size, repeats):
    k, m = size
    n = k * (k - 1) // 2
    rng = np.random.default_rng(0)
    a, b = rng.random((m, n)), rng.random((m, n))
    ra, rb = RDMs(a), RDMs(b)
    for method, goal in (("tau-a", 10), ("spearman", 5), ("corr_cov", 5)):
        t = time.perf_counter()
        bm.compare_rdms(a, b, method)
        t_compile = time.perf_counter() - t
        t_bm, _, _, ours = median_time(lambda method=method: bm.compare_rdms(a, b, method), repeats)
        t_ref, _, _, ref = median_time(lambda method=method: compare(ra, rb, method=method),
                                  max(1, repeats - 1))
        _row(f"compare {m}x{m} RDMs, {k} cond, {method}", t_ref, t_bm, t_compile - t_bm,
             float(np.max(np.abs(ours - ref))), goal)


def bench_crossnobis(size, repeats):
    k, runs, vox = size
    rng = np.random.default_rng(1)
    cond = np.tile(np.arange(k), runs)
    run = np.repeat(np.arange(runs), k)
    x = rng.standard_normal((k * runs, vox)) + rng.standard_normal((k, vox))[cond]
    ds = Dataset(x, obs_descriptors={"cond": cond, "run": run})
    t = time.perf_counter()
    bm.rdm(x, "crossnobis", conditions=cond, runs=run)
    t_compile = time.perf_counter() - t
    t_bm, _, _, ours = median_time(lambda: bm.rdm(x, "crossnobis", conditions=cond, runs=run),
                              repeats)
    t_ref, _, _, ref = median_time(lambda: calc_rdm(ds, "crossnobis", descriptor="cond",
                                               cv_descriptor="run").get_matrices()[0], repeats)
    _row(f"crossnobis {k} cond x {runs} runs x {vox} vox", t_ref, t_bm, t_compile - t_bm,
         float(np.max(np.abs(ours - ref))), 5)


def bench_bootstrap(size, repeats):
    k, n_models, n_subj, n_boot = size
    n = k * (k - 1) // 2
    rng = np.random.default_rng(2)
    truth = rng.random(n)
    data = truth + 0.5 * rng.standard_normal((n_subj, n))
    models = np.stack([truth + s * rng.standard_normal(n) for s in np.linspace(0.2, 2, n_models)])
    rs_models = [rsatoolbox.model.ModelFixed(f"m{i}", RDMs(models[i][None]))
                 for i in range(n_models)]
    rs_data = RDMs(data)

    # corr: rsatoolbox runs every sample. tau-a: rsatoolbox is timed on a twentieth of the
    # samples and scaled (its loop is linear in samples); ours are weighted inversion counts
    for method, n_ref in (("corr", n_boot), ("tau-a", max(2, n_boot // 20))):
        def ours(method=method):
            return bm.bootstrap_compare(models, data, method, key=jax.random.key(0),
                                        n_bootstrap=n_boot, over="stimulus",
                                        with_noise_ceiling=False)

        t = time.perf_counter()
        ours()
        t_compile = time.perf_counter() - t
        t_bm, _, _, res = median_time(ours, repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ref, _, _, ref = median_time(
                lambda method=method, n_ref=n_ref: rsatoolbox.inference.eval_bootstrap_pattern(
                    rs_models, rs_data, method=method, N=n_ref,
                    boot_noise_ceil=False), 1)  # equal work: ours computes no noise ceiling
        # different random draws: compare the bootstrap SEs (agree to Monte-Carlo error)
        evals = np.asarray(ref.evaluations).reshape(n_ref, n_models, -1).mean(axis=2)
        se_ref = np.nanstd(evals, axis=0, ddof=1)
        err = float(np.max(np.abs(res.se.values - se_ref) / se_ref))
        _row(f"bootstrap {n_boot} x {n_models} models, {k} cond, {method}",
             t_ref * n_boot / n_ref, t_bm, t_compile - t_bm, err, 20)
        scaled = f"timed on {n_ref} samples, scaled; " if n_ref < n_boot else ""
        print(f"    (rsatoolbox {scaled}max|diff|: relative difference of the bootstrap SEs, "
              f"independent draws, ~{1 / np.sqrt(2 * n_ref):.0%} noise from {n_ref} samples)")
    print("    (rsatoolbox's corr_cov stimulus bootstrap fails at >= 100 conditions: its "
          "sparse int8 indicator cannot be divided in place; ours is tested at 12)")


def bench_stochastic(size, repeats):
    n_net, k, u, n_iter = size
    rng = np.random.default_rng(3)
    nets = []
    for _ in range(n_net):
        mu = rng.standard_normal((k, u))
        a = rng.standard_normal((k, u, u)) / np.sqrt(u)
        nets.append((mu, a @ a.transpose(0, 2, 1) + 0.1 * np.eye(u)))
    kw = {"alpha": 1.0, "n_iter": n_iter, "n_restarts": 0, "key": jax.random.key(0)}
    t = time.perf_counter()
    bm.pairwise_distances(nets, "gaussian", **kw)
    t_first = time.perf_counter() - t
    timing = median_time(lambda: bm.pairwise_distances(nets, "gaussian", **kw), repeats)
    t_bm, d = timing.median, np.asarray(timing.out)
    pairs = n_net * (n_net - 1) // 2
    print(f"{'pairwise Gaussian stochastic shape':<42} {n_net} networks ({pairs} pairs), {k} "
          f"stimuli, {u} units, {n_iter} iterations x 2 starts: {t_bm:.2f} s "
          f"(first call incl. compile {t_first:.2f} s; no peer on PyPI); "
          f"{t_bm / pairs:.2f} s per pair -> 20 networks (190 pairs) ~{190 * t_bm / pairs:.0f} s")
    # accuracy of that budget: one pair against its converged distance (early stop)
    conv = bm.stochastic_shape_distance(nets[0], nets[1], 1.0, n_iter=30 * n_iter,
                                        n_restarts=0, key=jax.random.key(0))
    print(f"    (pair 0-1: d = {d[0, 1]:.8f} at {n_iter} iterations, {conv:.8f} converged "
          f"(<= {30 * n_iter}): relative error {abs(d[0, 1] - conv) / conv:.1e})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["compare", "crossnobis", "bootstrap", "stochastic"],
                        help="run only these benchmarks")
    args = parser.parse_args()
    if args.quick:
        sizes = {"compare": (30, 10), "crossnobis": (30, 4, 200), "bootstrap": (20, 3, 5, 100),
                 "stochastic": (4, 20, 8, 10)}
    else:
        sizes = {"compare": (100, 50), "crossnobis": (100, 8, 2000),
                 "bootstrap": (100, 5, 10, 1000), "stochastic": (6, 100, 50, 10)}
    from importlib.metadata import version

    print(f"brainmodels.rsa vs rsatoolbox {version('rsatoolbox')}, float64, "
          f"{jax.devices()[0].platform}, median of {args.repeats} runs")
    benches = {"compare": bench_compare, "crossnobis": bench_crossnobis,
               "bootstrap": bench_bootstrap, "stochastic": bench_stochastic}
    for name, fn in benches.items():
        if args.only is None or name in args.only:
            fn(sizes[name], 1 if name == "stochastic" else args.repeats)


if __name__ == "__main__":
    main()
