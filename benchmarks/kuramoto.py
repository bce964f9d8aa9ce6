"""Benchmark: brainmodels.kuramoto against a vectorised numpy RK4 of the same equations.

1. N = 10,000 all-to-all oscillators, 10,000 RK4 steps (dt = 0.05, Lorentzian quantile
   frequencies, K = 3): brainmodels (JAX, float32, jitted lax.scan, mean field with one cos/sin
   pass per stage) against numpy RK4 in float64 and float32 with the same mean-field trick
   (the fair peer: the same arithmetic, no pairwise N^2 sum). Prints seconds, the ratio and the
   final r of each side (they must agree to ~1e-3: the same trajectory up to round-off).
2. A K-sweep: 41 couplings x 4 seeds at N = 10,000 in ONE vmapped call (goal: < 60 s on 2 cores).

Timings are medians of ``--repeats`` runs (after one warm-up/compile run for JAX). The CPU may be
shared, so treat single numbers as noisy. ``--quick`` runs a small size.

Usage: python benchmarks/kuramoto.py [--quick] [--repeats 3] [--sweep-steps 500] [--single-core]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def numpy_rk4(omega, theta0, k, dt, steps, dtype):
    """Vectorised numpy RK4 of dtheta_i/dt = omega_i + K r sin(psi - theta_i) (mean field)."""
    omega = omega.astype(dtype)
    theta = theta0.astype(dtype).copy()
    k, dt = dtype(k), dtype(dt)
    half, sixth, two_pi, pi = dtype(0.5) * dt, dt / dtype(6), dtype(2 * np.pi), dtype(np.pi)

    def velocity(th):
        c, s = np.cos(th), np.sin(th)
        return omega + k * (s.mean() * c - c.mean() * s)

    for _ in range(steps):
        k1 = velocity(theta)
        k2 = velocity(theta + half * k1)
        k3 = velocity(theta + half * k2)
        k4 = velocity(theta + dt * k3)
        theta = theta + sixth * (k1 + 2 * k2 + 2 * k3 + k4)
        theta = np.mod(theta + pi, two_pi) - pi
    return theta


def bench_single(n, steps, repeats, numpy_repeats):
    import jax

    from brainmodels import kuramoto as km

    dt, k = 0.05, 3.0
    omega = np.asarray(km.natural_frequencies(n, "lorentzian", width=0.5), dtype=np.float64)
    theta0 = np.asarray(km.initial_phases(n, key=jax.random.key(0), r0=0.1), dtype=np.float64)
    params = km.KuramotoParams(coupling=k, omega=omega)

    def run_jax():
        ds = km.simulate(params, theta0, dt=dt, steps=steps, record_every=steps // 10,
                         record_phase=False)
        return float(ds.order_parameter[-1])

    run_jax()  # compile
    t_jax, _, _, r_jax = median_time(run_jax, repeats)
    rows = [("brainmodels (JAX, float32)", t_jax, r_jax)]
    for dtype in (np.float64, np.float32):
        t_np, _, _, theta = median_time(lambda d=dtype: numpy_rk4(omega, theta0, k, dt, steps, d),
                                   numpy_repeats)
        rows.append((f"numpy RK4 ({np.dtype(dtype).name})", t_np,
                     float(np.abs(np.exp(1j * theta.astype(np.float64)).mean()))))
    print(f"\n[1] N = {n}, {steps} RK4 steps, all-to-all (mean field), dt = {dt}, K = {k}")
    for name, t, r in rows:
        rate = n * steps / t / 1e6
        print(f"  {name:28s} {t:9.3f} s   {rate:8.1f} M osc-steps/s   final r = {r:.4f}"
              f"   speed-up of JAX: {t / t_jax:6.1f}x")


def bench_sweep(n, n_couplings, n_seeds, steps, repeats):
    import jax

    from brainmodels import kuramoto as km

    ks = np.linspace(0.0, 4.0, n_couplings)

    def run():
        ds = km.sweep(ks, n=n, distribution="lorentzian", width=1.0, seeds=range(n_seeds),
                      r0=0.1, dt=0.1, steps=steps, record_every=steps // 10)
        return ds

    t0 = time.perf_counter()
    ds = run()
    t_first = time.perf_counter() - t0
    t_sweep, _, _, ds = median_time(run, repeats)
    r_end = ds.order_parameter.isel(time=-1).mean("seed")
    err = np.abs(r_end - ds.order_parameter_theory).sel(coupling=ks[ks >= 2.5]).max()
    print(f"\n[2] sweep: {n_couplings} couplings x {n_seeds} seeds, N = {n}, {steps} RK4 steps "
          f"(dt = 0.1), one vmapped call on {len(os.sched_getaffinity(0))} core(s), jax {jax.__version__}")
    print(f"  first call (incl. compile) {t_first:8.2f} s;  median {t_sweep:8.2f} s   "
          f"({n_couplings * n_seeds * n * steps / t_sweep / 1e6:.1f} M osc-steps/s)")
    print(f"  max |r(T) - theory| for K >= 2.5: {float(err):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (median)")
    parser.add_argument("--sweep-steps", type=int, default=500, help="RK4 steps of the sweep")
    parser.add_argument("--single-core", action="store_true",
                        help="pin the process (JAX and numpy alike) to one CPU core; fairer on "
                             "a busy machine, where XLA's intra-op threads wait for cores")
    args = parser.parse_args()
    if args.single_core:  # before JAX starts its thread pool
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"CPU cores available to this process: {len(os.sched_getaffinity(0))}")
    if args.quick:
        bench_single(2000, 1000, args.repeats, args.repeats)
        bench_sweep(2000, 11, 2, 100, 1)
    else:
        bench_single(10_000, 10_000, args.repeats, args.repeats)
        bench_sweep(10_000, 41, 4, args.sweep_steps, 1)


if __name__ == "__main__":
    main()
