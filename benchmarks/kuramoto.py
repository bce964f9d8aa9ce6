"""Benchmark: brainmodels.kuramoto against a vectorised numpy RK4 of the same equations.

1. A size sweep, N = 100, 10^4 (10,000 RK4 steps) and 10^5 (2,000 steps) all-to-all
   oscillators (dt = 0.05, Lorentzian quantile frequencies, K = 3): brainmodels (JAX, jitted
   lax.scan, mean field with one cos/sin pass per stage) in float32 and in float64 against
   numpy RK4 of the same equations with the same mean-field trick in float32 and float64 (the
   fair peer: the same arithmetic, no pairwise N^2 sum). Per side: cold (first call in a fresh
   process, JAX compilation included, persistent cache off), cold with the persistent
   compilation cache filled by an earlier process, and warm (median of ``--repeats``), with
   CPU seconds and the final r (the sides agree to round-off).
2. ``--sweep``: 41 couplings x 4 seeds at N = 10,000 in ONE vmapped call.

Records go to ``benchmarks/records/kuramoto.jsonl``; ``python benchmarks/_records.py`` writes
the README table from them. Not a test.

Usage: python benchmarks/kuramoto.py [--quick] [--sizes small medium large] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _timing import append_records, machine, median_time  # benchmarks/ is on sys.path


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


#: name: oscillators, RK4 steps (fewer at 10^5 so numpy float64 stays under a minute)
SIZES = {"small": (100, 10_000), "medium": (10_000, 10_000), "large": (100_000, 2_000)}
DT, K = 0.05, 3.0
RECORDS = Path(__file__).with_name("records") / "kuramoto.jsonl"


def _problem(n):
    import jax

    from brainmodels import kuramoto as km

    omega = np.asarray(km.natural_frequencies(n, "lorentzian", width=0.5), dtype=np.float64)
    theta0 = np.asarray(km.initial_phases(n, key=jax.random.key(0), r0=0.1), dtype=np.float64)
    return omega, theta0


def _side(side: str, n: int, steps: int):
    """A zero-argument run of one side returning the final r (float)."""
    if side.startswith("numpy"):
        dtype = np.float32 if side.endswith("float32") else np.float64
        omega, theta0 = _problem(n)

        def run():
            theta = numpy_rk4(omega, theta0, K, DT, steps, dtype)
            return float(np.abs(np.exp(1j * theta.astype(np.float64)).mean()))
        return run
    import jax

    if side.endswith("float64"):
        jax.config.update("jax_enable_x64", True)
    from brainmodels import kuramoto as km

    omega, theta0 = _problem(n)
    dtype = np.float64 if side.endswith("float64") else np.float32
    params = km.KuramotoParams(coupling=K, omega=omega.astype(dtype))

    def run():
        ds = km.simulate(params, theta0.astype(dtype), dt=DT, steps=steps,
                         record_every=steps // 10, record_phase=False)
        return float(ds.order_parameter[-1])
    return run


SIDES = ("brainmodels float32", "brainmodels float64", "numpy float32", "numpy float64")


def cold_child(size: str, side: str) -> None:
    """Fresh process: time the first call (JAX compilation included), print JSON."""
    n, steps = SIZES[size]
    run = _side(side, n, steps)
    t0, c0 = time.perf_counter(), time.process_time()
    r = run()
    print(json.dumps(dict(wall=time.perf_counter() - t0, cpu=time.process_time() - c0, r=r)))


def _cold(size: str, side: str, cache: str) -> dict:
    env = {**os.environ, "BRAINMODELS_JAX_CACHE": cache}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--cold-child", size,
                          side], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(size: str, repeats: int) -> list[dict]:
    """Cold (fresh process; for JAX also with the persistent compilation cache filled by a
    previous process) and warm (median of ``repeats`` in one process) for every side."""
    import tempfile

    n, steps = SIZES[size]
    records = []
    for side in SIDES:
        cold = _cold(size, side, "off")
        with tempfile.TemporaryDirectory() as cache:
            _cold(size, side, cache)  # fills the cache
            cached = _cold(size, side, cache)
        sub = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--warm-child",
                              size, side, str(repeats)], capture_output=True, text=True,
                             check=True, env={**os.environ, "BRAINMODELS_JAX_CACHE": "off"})
        warm = json.loads(sub.stdout.strip().splitlines()[-1])
        records.append(dict(benchmark="kuramoto", size=size, side=side, n=n, steps=steps,
                            cold_wall=cold["wall"], cold_cpu=cold["cpu"],
                            cold_cached_wall=cached["wall"], warm_wall=warm["wall"],
                            warm_cpu=warm["cpu"], r=warm["r"]))
        print(f"  {size:6s} N={n:>6} {steps} steps  {side:20s} cold {cold['wall']:7.3f} s "
              f"(cached {cached['wall']:7.3f} s)  warm {warm['wall']:7.3f} s "
              f"({warm['cpu']:.2f} CPU-s)  r = {warm['r']:.4f}", flush=True)
    return records


def warm_child(size: str, side: str, repeats: int) -> None:
    n, steps = SIZES[size]
    run = _side(side, n, steps)
    run()  # compile / warm up
    t = median_time(run, repeats)
    print(json.dumps(dict(wall=t.median, cpu=float(np.median(t.cpu)), r=t.out)))


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small size only")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=None)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per side (median)")
    parser.add_argument("--sweep", action="store_true", help="also the K-sweep (one vmapped call)")
    parser.add_argument("--sweep-steps", type=int, default=500, help="RK4 steps of the sweep")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--cold-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--warm-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_child:
        cold_child(*args.cold_child)
        return 0
    if args.warm_child:
        warm_child(args.warm_child[0], args.warm_child[1], int(args.warm_child[2]))
        return 0
    where = machine(numpy=np.__version__)
    print(f"machine: {where}", flush=True)
    sizes = args.sizes or (["small"] if args.quick else list(SIZES))
    records = []
    for size in sizes:
        records += bench_size(size, args.repeats)
    if args.sweep:
        bench_sweep(10_000, 41, 4, args.sweep_steps, 1)
    if not args.no_record:
        append_records(RECORDS, records, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
