"""Spiking networks: brainmodels.snn against brian2, same networks, same process.

CUBA and COBA (Brette et al. 2007; 4,000 LIF neurons, p = 0.02) and Brunel's (2000) model A
(10,000 LIF neurons with delta synapses, C_E = 800, Poisson drive; the sweep only), 1 s of
biological time at dt = 0.1 ms:

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

    python benchmarks/snn.py            # the sweep: 500, 2,000, 4,000 neurons, records
    python benchmarks/snn.py --quick    # the sweep's smallest size
    python benchmarks/snn.py --single   # full size, detailed (simulate_many, standalone,
                                        # BrainPy); --single --quick: 1,000 neurons, 200 ms

The sweep runs every side in fresh processes: cold (build + first run, JAX compilation or
brian2's code generation and cython compilation included, nothing cached), cold with the
cache an earlier process filled (JAX's persistent compilation cache; brian2's cython cache),
and warm (median of ``--repeats``); brainmodels in float32 and float64, brian2 in float64.
Records go to ``benchmarks/records/snn.jsonl`` and the README table is generated from them.
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


# ----------------------------------------------------------------------------- the sweep

#: 1/8, 1/2 and the full size of Brette et al. (2007) (CUBA, COBA: 4,000 neurons) and of
#: Brunel (2000) model A as issue 13 sets it (N_E = 8,000, N_I = 2,000)
SWEEP_SIZES = {"cuba": (500, 2000, 4000), "coba": (500, 2000, 4000),
               "brunel": (1250, 5000, 10000)}
#: model -> network of n neurons (seed 0)
MODELS = {"cuba": lambda snn, n: snn.cuba(seed=0, n=n),
          "coba": lambda snn, n: snn.coba(seed=0, n=n),
          "brunel": lambda snn, n: snn.brunel(g=5.0, eta=2.0, seed=0, n_exc=n * 4 // 5)}
SWEEP_SIDES = ("brainmodels float32", "brainmodels float64", "brian2 cython")
RECORDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "records", "snn.jsonl")


def sweep_child(kind: str, side: str, model: str, n: int, duration: float,
                repeats: int) -> None:
    """Fresh process: build the network and run it (``cold``: once, timing build + first run,
    compilation or code generation included; ``warm``: the median of ``repeats`` runs after a
    first one). Prints one JSON line."""
    if side == "brainmodels float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    from brainmodels import snn

    make = MODELS[model]
    t0, c0 = time.perf_counter(), time.process_time()
    net = make(snn, n)
    stats = {}
    if side.startswith("brainmodels"):
        import jax

        key = jax.random.key(0) if net.inputs else None

        def run():
            res = snn.simulate(net, duration, 0.1, key=key)
            summary = snn.population_summary(res, start_ms=min(200.0, duration / 5))["P"]
            stats.update(cv_isi=summary["cv_isi"], fano_factor=summary["fano_factor"])
            return summary["rate_hz"]
    else:
        import brian2 as b2

        from brainmodels.snn.brian2_bridge import _codegen_target, to_brian2

        if os.environ.get("BENCH_CYTHON_CACHE"):
            b2.prefs["codegen.runtime.cython.cache_dir"] = os.environ["BENCH_CYTHON_CACHE"]
        target = _codegen_target("cython")
        target.__enter__()
        model_b2 = to_brian2(net, dt_ms=0.1)
        runs = [0]

        def run():
            before = int(model_b2.spike_monitors["P"].num_spikes)
            model_b2.network.run(duration * b2.ms, namespace={})
            runs[0] += 1
            if runs[0] == 1:  # statistics of the first run (the monitor keeps every run)
                from brainmodels.snn.brian2_bridge import _dataset

                res = _dataset(net, model_b2, duration, 0.1, snn.Recording(), "cython")
                summary = snn.population_summary(res, start_ms=min(200.0, duration / 5))["P"]
                stats.update(cv_isi=summary["cv_isi"], fano_factor=summary["fano_factor"])
            return (int(model_b2.spike_monitors["P"].num_spikes) - before) / n / (duration / 1e3)
    if kind == "cold":
        rate = run()
        out = dict(wall=time.perf_counter() - t0, cpu=time.process_time() - c0, rate=rate,
                   **stats)
    else:
        run()
        t = median_time(run, repeats)
        out = dict(wall=t.median, cpu=float(np.median(t.cpu)), rate=float(t.out))
    print(json.dumps(out))


def _sweep_call(kind, side, model, n, duration, repeats, env) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--sweep-child", kind,
                          side, model, str(n), str(duration), str(repeats)],
                         capture_output=True, text=True, check=True, env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_sweep(models, sizes, duration, repeats) -> list[dict]:
    """Per model, size and side: cold (nothing cached: JAX's persistent cache off, brian2's
    cython cache empty), cold with the cache an earlier process filled, and warm."""
    records = []
    for model in models:
        for n in (sizes or SWEEP_SIZES[model]):
            for side in SWEEP_SIDES:
                with tempfile.TemporaryDirectory() as cache:
                    env = ({"BRAINMODELS_JAX_CACHE": cache} if side.startswith("brainmodels")
                           else {"BENCH_CYTHON_CACHE": cache})
                    cold = _sweep_call("cold", side, model, n, duration, 1, env)
                    cached = _sweep_call("cold", side, model, n, duration, 1, env)
                    warm = _sweep_call("warm", side, model, n, duration, repeats, env)
                records.append(dict(benchmark="snn", model=model, n=n, side=side,
                                    duration_ms=duration, cold_wall=cold["wall"],
                                    cold_cpu=cold["cpu"], cold_cached_wall=cached["wall"],
                                    warm_wall=warm["wall"], warm_cpu=warm["cpu"],
                                    rate_hz=warm["rate"], cv_isi=cold.get("cv_isi"),
                                    fano_factor=cold.get("fano_factor")))
                print(f"  {model} n={n:5d} {side:20s} cold {cold['wall']:6.2f} s (cached "
                      f"{cached['wall']:6.2f} s)  warm {warm['wall']:6.3f} s "
                      f"({warm['cpu']:.2f} CPU-s)  rate {warm['rate']:.2f} Hz", flush=True)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 neurons, 200 ms, 4 nets")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="cuba,coba,brunel")
    parser.add_argument("--many-methods", default="loop,union,vmap",
                        help="simulate_many methods to time (loop, union, vmap)")
    parser.add_argument("--targets", default="cython,cpp_standalone",
                        help="brian2 targets, comma-separated (numpy, cython, cpp_standalone)")
    parser.add_argument("--brainpy", default="auto", choices=["auto", "off"],
                        help="also time BrainPy on the same networks when it is installed")
    parser.add_argument("--standalone-timeout", type=float, default=600.0)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--_standalone", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--single", action="store_true",
                        help="the detailed one-size run (simulate_many, cpp_standalone, "
                             "BrainPy) instead of the size sweep")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--sweep-child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._standalone:
        _standalone_child(args._standalone, args.n, args.duration)
        return 0
    if args.sweep_child:
        kind, side, model, n, duration, repeats = args.sweep_child
        sweep_child(kind, side, model, int(n), float(duration), int(repeats))
        return 0
    if not args.single and not args.crossover:
        from _timing import append_records, machine

        where = machine()
        print(f"machine: {where}; {args.duration:g} ms at dt 0.1 ms", flush=True)
        sizes = None if not args.quick else (500,)
        records = bench_sweep(args.models.split(","), sizes, args.duration, args.repeats)
        if not args.no_record:
            from pathlib import Path

            append_records(Path(RECORDS), records, where)
        return 0
    if args.quick:
        args.n, args.duration, args.networks = 1000, 200.0, 4
    import jax

    from brainmodels import snn

    print(f"brainmodels.snn vs brian2: {args.n} neurons, {args.duration:g} ms at dt = 0.1 ms, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs")
    for name in [m for m in args.models.split(",") if m != "brunel"]:
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
