"""Benchmark: brainmodels.whitening.adapt (one jitted lax.scan) against a plain numpy loop of
the same updates, in the same process, on the same data.

Per size (N, K = N(N+1)/2, samples, sample by sample, float32): the numpy loop
``z = W^T solve(I + W diag(g) W^T, x); g += lr (z*z - 1)``; brainmodels cold (first call,
compile included) and warm (median of --repeats). Prints wall and CPU seconds, the speed-up
cold and warm (goal >= 20x) and the largest gain difference between the two (round-off only).
Then many circuits (seeds/contexts) in one vmapped call against the same number of single calls.
Run on a GPU when one is lent: the same script's figures.

Usage: python benchmarks/whitening.py [--quick] [--repeats 3] [--numpy-samples 10000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def numpy_online(W, X, lr):
    """The peer: the same updates, sample by sample, in float32 numpy."""
    w = np.asarray(W, np.float32)
    g = np.zeros(w.shape[1], np.float32)
    eye = np.eye(w.shape[0], dtype=np.float32)
    lr = np.float32(lr)
    for x in X:
        z = w.T @ np.linalg.solve(eye + (w * g) @ w.T, x)
        g += lr * (z * z - 1)
    return g


def bench_size(n, n_samples, numpy_samples, repeats, lr=5e-3):
    import jax

    from brainmodels import whitening as wh

    key = jax.random.key(n)
    W = wh.random_frame(n, key=key)
    c = wh.random_covariance(n, 10.0, key=jax.random.fold_in(key, 1))
    X = (np.random.default_rng(0).standard_normal((n_samples, n)) @ np.linalg.cholesky(c).T
         ).astype(np.float32)

    def run():
        return wh.adapt(W, X, lr=lr, batch_size=1, cov=c, n_records=10).gains.values

    t0, c0 = time.perf_counter(), time.process_time()
    g_jax = run()
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm = median_time(run, repeats)
    m = min(numpy_samples, n_samples)
    t_np = median_time(lambda: numpy_online(W, X[:m], lr), 1)
    scale = n_samples / m  # the numpy loop's cost is linear in the samples
    np_time, np_cpu = t_np.median * scale, t_np.cpu[0] * scale
    sub = wh.adapt(W, X[:m], lr=lr, batch_size=1, n_records=1).gains.values
    diff = float(np.abs(sub - t_np.out).max())
    print(f"N = {n:3d}, K = {W.shape[1]:5d}, {n_samples} samples: numpy {np_time:8.2f} s "
          f"(cpu {np_cpu:7.2f}{', extrapolated from ' + str(m) if m < n_samples else ''}); "
          f"brainmodels cold {cold:7.2f} s (cpu {cold_cpu:6.2f}), warm {warm.median:7.3f} s "
          f"(cpu {warm.cpu[-1]:6.2f}); speed-up cold {np_time / cold:6.1f}x, warm "
          f"{np_time / warm.median:6.1f}x; max |g_jax - g_numpy| {diff:.1e}"
          f" (|g| ~ {float(np.abs(g_jax).max()):.2f})")


def bench_many(n, n_circuits, n_samples):
    import jax

    from brainmodels import whitening as wh

    W = wh.random_frame(n, key=jax.random.key(0))
    X = np.random.default_rng(1).standard_normal((n_circuits, n_samples, n)).astype(np.float32)
    wh.adapt_many(W, X, lr=5e-3, batch_size=1, n_records=10)
    t_many = median_time(lambda: wh.adapt_many(W, X, lr=5e-3, batch_size=1, n_records=10)
                         .gains.values, 1)
    wh.adapt(W, X[0], lr=5e-3, batch_size=1, n_records=10)
    t_one = median_time(lambda: [wh.adapt(W, x, lr=5e-3, batch_size=1, n_records=10)
                                 .gains.values for x in X], 1)
    print(f"{n_circuits} circuits, N = {n}, {n_samples} samples each: one vmapped call "
          f"{t_many.median:.2f} s, {n_circuits} single calls {t_one.median:.2f} s "
          f"({t_one.median / t_many.median:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numpy-samples", type=int, default=10_000,
                        help="samples the numpy loop runs (its time is scaled to the full run)")
    args = parser.parse_args()
    import jax

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          f"{len(os.sched_getaffinity(0))} CPU core(s)")
    sizes = [(2, 10_000), (8, 10_000)] if args.quick else [(2, 100_000), (8, 100_000),
                                                         (64, 100_000)]
    for n, samples in sizes:
        bench_size(n, samples, args.numpy_samples if not args.quick else 2_000, args.repeats)
    bench_many(8, 8, 2_000 if args.quick else 20_000)


if __name__ == "__main__":
    main()
