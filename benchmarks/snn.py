"""Spiking networks: brainmodels.snn against brian2, same networks, same process.

CUBA and COBA (Brette et al. 2007; 4,000 LIF neurons, p = 0.02), 1 s of biological time at
dt = 0.1 ms:

* one network: brainmodels (JAX, jitted ``lax.scan``, event-driven delivery) against brian2's
  runtime targets (numpy, cython) and, in a subprocess, cpp_standalone, and against BrainPy
  (``_brainpy_peer.py``: its event-driven CSR projections) when it is installed (``bench``
  extra);
* ``--networks`` networks with different seeds at once (``simulate_many``) against brian2's
  per-network time;
* ``--crossover``: event-driven against dense delivery over connection densities (the
  measurement behind ``_delivery.EVENT_COST_RATIO``) and spike-index extraction
  (``jnp.nonzero`` and one ``top_k`` against the two-level search of
  ``_delivery._first_spikes``).

Each timing is the median of ``--repeats`` runs after one warm-up run (JAX compilation and
brian2's cython compilation are reported separately). The CPU may be shared: medians, not
minima, and the ratios are what to read.

    python benchmarks/snn.py            # full size
    python benchmarks/snn.py --quick    # 1,000 neurons, 200 ms, 4 networks
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _timing import median_time  # benchmarks/ is on sys.path


def _jax_one(make, args):
    from brainmodels import snn

    net = make(seed=0, n=args.n)
    t0 = time.perf_counter()
    res = snn.simulate(net, args.duration, 0.1)
    compile_s = time.perf_counter() - t0
    run_s = median_time(lambda: snn.simulate(net, args.duration, 0.1), args.repeats).median
    return run_s, compile_s, snn.population_summary(res)["P"]


def _jax_many(make, args, method):
    from brainmodels import snn

    nets = [make(seed=s, n=args.n) for s in range(args.networks)]
    t0 = time.perf_counter()
    res = snn.simulate_many(nets, args.duration, 0.1, method=method)
    first = time.perf_counter() - t0
    run_s = median_time(lambda: snn.simulate_many(nets, args.duration, 0.1, method=method),
                         max(1, args.repeats // 2)).median
    rates = snn.firing_rates(res).mean("neuron").values
    return run_s, first, rates


def _brian2_runtime(make, args, target):
    """brian2 runtime target: setup (code generation, compilation) once, then timed runs."""
    import brian2 as b2

    from brainmodels.snn.brian2_bridge import _codegen_target, to_brian2

    net = make(seed=0, n=args.n)
    with _codegen_target(target):
        model = to_brian2(net, dt_ms=0.1)
        t0 = time.perf_counter()
        model.network.run(0.1 * b2.ms, namespace={})  # code generation / cython compilation
        setup = time.perf_counter() - t0
        run = median_time(lambda: model.network.run(args.duration * b2.ms, namespace={}),
                           args.repeats).median
    total_ms = 0.1 + args.repeats * args.duration
    rate = model.spike_monitors["P"].num_spikes / args.n / (total_ms / 1000.0)
    return run, setup, float(rate)


def _standalone_child(model_name: str, n: int, duration: float) -> None:
    """Run in a subprocess: brian2 cpp_standalone (a process-global device)."""
    import brian2 as b2

    from brainmodels import snn
    from brainmodels.snn.brian2_bridge import to_brian2

    net = {"cuba": snn.cuba, "coba": snn.coba}[model_name](seed=0, n=n)
    with tempfile.TemporaryDirectory() as tmp:
        b2.set_device("cpp_standalone", directory=tmp, build_on_run=False)
        model = to_brian2(net, dt_ms=0.1)
        model.network.run(duration * b2.ms, namespace={})
        t0 = time.perf_counter()
        b2.device.build(directory=tmp, compile=True, run=True)
        wall = time.perf_counter() - t0
        n_spikes = int(model.spike_monitors["P"].num_spikes)
        print(json.dumps({"run_s": float(b2.device._last_run_time), "build_run_s": wall,
                          "rate_hz": n_spikes / n / (duration / 1000.0)}))


def _brian2_standalone(name, args):
    cmd = [sys.executable, __file__, "--_standalone", name, "--n", str(args.n),
           "--duration", str(args.duration)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.standalone_timeout,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as err:
        print(f"  cpp_standalone skipped: {type(err).__name__}")
        return None


def _crossover(args):
    import jax
    import jax.numpy as jnp

    from brainmodels import snn
    from brainmodels.snn._delivery import _first_spikes

    n = 1000
    print(f"\nevent-driven vs dense delivery, {n} LIF neurons, 200 ms (median of {args.repeats})")
    print(f"{'p':>6} {'K':>5} {'rate_hz':>8} {'event_s':>8} {'dense_s':>8} {'dense/event':>11}")
    rng = np.random.default_rng(0)
    for p in (0.01, 0.05, 0.1, 0.2, 0.5):
        conn = snn.fixed_probability(n, n, p, 0.2 / (p * n) * 40, seed=1)
        pop = snn.Population("P", n, snn.LIF(t_ref=2.0), v0=rng.uniform(-60, -50, n),
                             i_ext=rng.uniform(9, 13, n))
        net = snn.Network((pop,), (snn.Projection("P", "P", "e", conn),))
        out = {}
        for mode in ("event", "dense"):
            res = snn.simulate(net, 200.0, 0.1, mode=mode)
            out[mode] = median_time(lambda m=mode, net=net: snn.simulate(net, 200.0, 0.1, mode=m),
                                     args.repeats).median
        k = int(np.bincount(conn.pre, minlength=n).max())
        rate = float(snn.firing_rates(res).mean())
        print(f"{p:6.2f} {k:5d} {rate:8.1f} {out['event']:8.3f} {out['dense']:8.3f} "
              f"{out['dense'] / out['event']:11.2f}")

    spikes = jnp.asarray(rng.random((10000, 4000)) < 5e-4)  # ~2 spikes per step, as CUBA
    for name, fn in (("jnp.nonzero(size=8)",
                      lambda s: jnp.nonzero(s, size=8, fill_value=4000)[0]),
                     ("one top_k (8)", lambda s: jax.lax.top_k(s.astype(jnp.float32), 8)[1]),
                     ("_first_spikes (two-level, 8)", lambda s: _first_spikes(s, 8)[0]),
                     ("_first_spikes (one top_k, 64)", lambda s: _first_spikes(s, 64)[0])):
        f = jax.jit(lambda x, fn=fn: jax.lax.scan(lambda c, s: (c, fn(s)), 0, x)[1])
        jax.block_until_ready(f(spikes))
        t = median_time(lambda f=f: jax.block_until_ready(f(spikes)), args.repeats).median
        print(f"spike indices, 4000 neurons x 10000 steps, {name:30s}: {t:.3f} s")


def _brainpy_row(name, args, one, per_net):
    """BrainPy on the same network (benchmarks/_brainpy_peer.py), if it imports here."""
    import _brainpy_peer

    version = _brainpy_peer.available()
    if version is None:
        print("  brainpy: not installed beside this jax (pip install -e .[bench])")
        return
    r = _brainpy_peer.run(name, n=args.n, duration_ms=args.duration, repeats=args.repeats)
    print(f"  brainpy {version}: run {r['run_s']:.3f} s (+ compile {r['compile_s']:.1f} s), "
          f"rate {r['rate_hz']:.2f} Hz | speed-up one network {r['run_s'] / one:.2f}x, "
          f"per network {r['run_s'] / per_net:.2f}x\n    ({r['method']})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 neurons, 200 ms, 4 nets")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="cuba,coba")
    parser.add_argument("--many-methods", default="loop,union,vmap",
                        help="simulate_many methods to time (loop, union, vmap)")
    parser.add_argument("--targets", default="cython,cpp_standalone",
                        help="brian2 targets, comma-separated (numpy, cython, cpp_standalone)")
    parser.add_argument("--brainpy", default="auto", choices=["auto", "off"],
                        help="also time BrainPy on the same networks when it is installed")
    parser.add_argument("--standalone-timeout", type=float, default=600.0)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--_standalone", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._standalone:
        _standalone_child(args._standalone, args.n, args.duration)
        return 0
    if args.quick:
        args.n, args.duration, args.networks = 1000, 200.0, 4
    import jax

    from brainmodels import snn

    print(f"brainmodels.snn vs brian2: {args.n} neurons, {args.duration:g} ms at dt = 0.1 ms, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs")
    for name in args.models.split(","):
        make = {"cuba": snn.cuba, "coba": snn.coba}[name]
        one, compile_s, summary = _jax_one(make, args)
        print(f"\n{name.upper()}: brainmodels one network {one:.3f} s (first call incl. "
              f"compile {compile_s:.1f} s), rate {summary['rate_hz']:.2f} Hz, "
              f"CV-ISI {summary['cv_isi']:.2f}")
        per_net = None
        for method in args.many_methods.split(","):
            many, first, rates = _jax_many(make, args, method)
            per = many / args.networks
            per_net = per if per_net is None else min(per_net, per)
            print(f"  brainmodels {args.networks} networks (simulate_many, {method}) {many:.3f} s"
                  f" = {per:.3f} s per network (first call {first:.1f} s); rates "
                  f"{rates.mean():.2f} +- {rates.std():.2f} Hz over seeds")
        for target in [t for t in args.targets.split(",") if t]:
            if target == "cpp_standalone":
                out = _brian2_standalone(name, args)
                if out:
                    print(f"  brian2 cpp_standalone: run {out['run_s']:.3f} s (build+run "
                          f"{out['build_run_s']:.1f} s), rate {out['rate_hz']:.2f} Hz | "
                          f"speed-up one {out['run_s'] / one:.2f}x, "
                          f"per network {out['run_s'] / per_net:.2f}x")
                continue
            t, setup, rate = _brian2_runtime(make, args, target)
            print(f"  brian2 {target}: run {t:.3f} s (+ setup/codegen {setup:.1f} s, not "
                  f"counted), rate {rate:.2f} Hz | speed-up one network {t / one:.2f}x, "
                  f"{args.networks} networks per network {t / per_net:.2f}x")
        if args.brainpy == "auto":
            _brainpy_row(name, args, one, per_net)
    if args.crossover:
        _crossover(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
