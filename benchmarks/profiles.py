"""Where the time goes where a speed goal is missed: the profiles behind the README's goal table.

Each profile runs the missed case and splits its time into parts a reader can check:

* ``gemm``: the machine's matrix-multiply rate (float32, float64);
* ``ridge``: one product X^T Y in each dtype at the sweep's medium and large sizes (the
  least work a fit of every voxel does), the unit in which the goal table counts the
  sweep's fits;
* ``rsa``: compare_rdms at 100 and 500 conditions (10 x 10 RDMs): the time of one read of the inputs
  (a sum over them, memory bound) against both sides' warm times, and our time by function;
* ``snn``: Brunel A at full size (10,000 neurons, 1 s), CUBA and COBA at 4,000: our run
  split into parts (Brunel: removing the recurrent projections, then the Poisson drive; CUBA,
  COBA: the spike recording and the loop floor), brian2 cython's run split by its own
  profiler;
* ``kuramoto``: N = 10^4 mean field: the sines and cosines alone (four of each per oscillator
  and RK4 step) against the whole run, on both sides, float32.

Run on a quiet machine (nothing else running); records go to ``records/profiles.jsonl``,
and ``python benchmarks/_records.py`` renders the goal table from them and the sweeps' records.

    python benchmarks/profiles.py                 # every profile (~3 minutes on 2 cores)
    python benchmarks/profiles.py --only rsa,kuramoto
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import numpy as np
from _timing import append_records, machine, median_time  # benchmarks/ is on sys.path

RECORDS = Path(__file__).with_name("records") / "profiles.jsonl"


def gemm(repeats: int = 5) -> list[dict]:
    out = []
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((2048, 2048)).astype(dtype)
        a @ a
        t = median_time(lambda a=a: a @ a, repeats).median
        out.append(dict(topic="gemm", dtype=dtype, gflops=2 * 2048**3 / t / 1e9))
        print(f"GEMM {dtype}: {out[-1]['gflops']:.1f} GFLOP/s")
    return out


def ridge(repeats: int = 5) -> list[dict]:
    """One product X^T Y in float32 and float64 at the sweep's medium and large sizes: the
    least work a ridge fit of every voxel does; the goal table sets the sweep's warm fits
    (``records/ridge.jsonl``) in units of it."""
    from ridge import SWEEP, _data

    out = []
    for size in ("medium", "large"):
        n, p, v = SWEEP[size]
        X, Y, _, _ = _data(n, p, v, n_test=max(200, n // 5))
        rec = dict(topic="ridge", size=size, n=n, p=p, v=v)
        for dtype in ("float32", "float64"):
            xd, yd = X.astype(dtype), Y.astype(dtype)
            rec[f"product{dtype[-2:]}"] = median_time(lambda xd=xd, yd=yd: xd.T @ yd,
                                                      repeats).median
        out.append(rec)
        print(f"ridge {size}: X^T Y float32 {rec['product32'] * 1e3:.1f} ms, float64 "
              f"{rec['product64'] * 1e3:.1f} ms")
    return out


def rsa(repeats: int = 20) -> list[dict]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import warnings

    from rsatoolbox.rdm import RDMs, compare

    import brainmodels.rsa as bm

    warnings.filterwarnings("ignore")
    out = []
    for k, method in ((k, m) for k in (100, 500) for m in ("cosine", "corr")):
        n = k * (k - 1) // 2
        rng = np.random.default_rng(0)
        a, b = rng.random((10, n)), rng.random((10, n))
        # one read of both inputs: the least any comparison must do
        read = median_time(lambda a=a, b=b: np.add.reduce(a, axis=None)
                           + np.add.reduce(b, axis=None), repeats).median
        ours = median_time(lambda m=method, a=a, b=b: bm.compare_rdms(a, b, m), repeats).median
        ra, rb = RDMs(a), RDMs(b)
        compare(ra, rb, method=method)
        peer = median_time(lambda m=method, ra=ra, rb=rb: compare(ra, rb, method=m), repeats).median
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(repeats):
            bm.compare_rdms(a, b, method)
        prof.disable()
        stats = pstats.Stats(prof).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, ..)
        total = sum(v[2] for v in stats.values())
        top = sorted(((v[2] / total, f"{Path(f).name}:{name}") for (f, _, name), v
                      in stats.items()), reverse=True)[:3]
        out.append(dict(topic="rsa", conditions=k, method=method, input_mb=2 * a.nbytes / 1e6,
                        read_wall=read, ours_wall=ours, peer_wall=peer,
                        top=[[name, frac] for frac, name in top]))
        print(f"rsa {method} {k}: one read {read * 1e3:.2f} ms, ours {ours * 1e3:.2f} ms "
              f"({ours / read:.1f} reads), rsatoolbox {peer * 1e3:.2f} ms "
              f"({peer / read:.1f} reads); ours by function: "
              + ", ".join(f"{name} {frac:.0%}" for frac, name in top))
    return out


def snn(repeats: int = 3) -> list[dict]:
    """Brunel A at 10,000 neurons and CUBA and COBA at 4,000 (1 s each, dt 0.1 ms): ours
    split by removing one part at a time, brian2 cython's by its own profiler."""
    from brainmodels import snn as bsnn

    return [_snn_one("Brunel A 10,000 LIF, 1 s", bsnn.brunel(g=5.0, eta=2.0, seed=0,
                                                           n_exc=8000), repeats),
            _snn_one("CUBA 4,000 LIF, 1 s", bsnn.cuba(seed=0, n=4000), repeats),
            _snn_one("COBA 4,000 LIF, 1 s", bsnn.coba(seed=0, n=4000), repeats)]


def _snn_one(label: str, net, repeats: int) -> dict:
    import dataclasses

    import jax

    from brainmodels import snn as bsnn

    key = jax.random.key(0)
    if net.inputs:  # Brunel: the drive can be removed, and the rest stays quiet
        parts = {"whole network": (net, None),
                 "without the recurrent projections": (dataclasses.replace(net, projections=()),
                                                       None),
                 "without projections and drive": (dataclasses.replace(net, projections=(),
                                                                       inputs=()), None)}
    else:  # CUBA, COBA: self-sustained; without their synapses they fire far more, so the
        # parts are the spike recording and the loop's floor (a 40-neuron copy, no synapses)
        small = dataclasses.replace(bsnn.cuba(seed=0, n=40), projections=())
        parts = {"whole network": (net, None),
                 "without spike recording": (net, bsnn.Recording(spikes=False)),
                 "loop floor": (small, bsnn.Recording(spikes=False))}
    ours = {}
    for name, (variant, recording) in parts.items():
        def run(variant=variant, recording=recording):
            return bsnn.simulate(variant, 1000.0, 0.1, key=key if variant.inputs else None,
                                 recording=recording)

        run()
        ours[name] = median_time(run, repeats).median
        print(f"snn brainmodels float32, {label}, {name}: {ours[name]:.2f} s")
    # brian2 cython, its own profiler (time per code object)
    import brian2 as b2

    from brainmodels.snn.brian2_bridge import _codegen_target, to_brian2

    with _codegen_target("cython"):
        model = to_brian2(net, dt_ms=0.1)
        model.network.run(1 * b2.ms, namespace={})  # compile every code object
        model.network.run(1000 * b2.ms, namespace={}, profile=True)
        prof = model.network.profiling_info
    total = sum(float(t) for _, t in prof)
    groups: dict[str, float] = {}
    for name, t in prof:
        # names of the bridge's objects: syn_<i>_pre (delivery), pop_<name>_* (neurons)
        kind = ("synaptic delivery" if name.startswith("syn_") and name.endswith("_pre") else
                "Poisson drive" if name.startswith("poissoninput") else
                "neuron update, threshold, reset" if name.startswith("pop_") else
                "spike recording" if name.startswith("spikemonitor") else "other")
        groups[kind] = groups.get(kind, 0.0) + float(t)
    print(f"snn brian2 cython, {label} (profiler): total "
          f"{total:.2f} s; " + ", ".join(f"{k} {v:.2f} s" for k, v in groups.items()))
    return dict(topic="snn", network=label, ours=ours, brian2_total=total, brian2=groups)


def kuramoto(repeats: int = 3) -> list[dict]:
    import jax
    from kuramoto import SIZES, _side

    n, steps = SIZES["medium"]
    theta = np.random.default_rng(0).uniform(-np.pi, np.pi, n).astype(np.float32)

    from brainmodels.kuramoto.engine import _sincos32

    @jax.jit
    def trig_only(th):  # what every RK4 step cannot avoid: 4 sines and 4 cosines per oscillator
        def step(th, _):  # (brainmodels' own vectorised sincos, as its integrator calls it)
            acc = th
            for _ in range(4):
                c, s = _sincos32(acc)
                acc = acc + 1e-3 * (c + s)
            return acc, None
        return jax.lax.scan(step, th, None, length=steps)[0]

    def numpy_trig():
        th = theta.copy()
        for _ in range(steps):
            for _ in range(4):
                th = th + np.float32(1e-3) * (np.sin(th) + np.cos(th))
        return th

    ours_run, numpy_run = _side("brainmodels float32", n, steps), _side("numpy float32", n, steps)
    ours_run()
    trig_only(theta).block_until_ready()
    rec = dict(topic="kuramoto", n=n, steps=steps,
               ours=median_time(ours_run, repeats).median,
               ours_trig=median_time(lambda: trig_only(theta), repeats).median,
               numpy=median_time(numpy_run, repeats).median,
               numpy_trig=median_time(numpy_trig, repeats).median)
    print(f"kuramoto N={n:,}, {steps:,} RK4 steps, float32: brainmodels {rec['ours']:.2f} s "
          f"(sines and cosines alone {rec['ours_trig']:.2f} s), numpy {rec['numpy']:.2f} s "
          f"(sines and cosines alone {rec['numpy_trig']:.2f} s)")
    return [rec]


_FIRST_TOUCH = """
import json, time, numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import brainmodels.rsa as bm
rng = np.random.default_rng(0)
a, b = rng.random((10, 45)), rng.random((10, 45))
def t(f):
    t0 = time.perf_counter(); f(); return time.perf_counter() - t0
first_op, second_op = t(lambda: np.add.reduce(a * b, axis=1)), t(lambda: np.add.reduce(a * b, axis=1))
cold = t(lambda: bm.compare_rdms(a, b, "cosine"))
warm = min(t(lambda: bm.compare_rdms(a, b, "cosine")) for _ in range(50))
print(json.dumps(dict(first_op=first_op, second_op=second_op, cold=cold, warm=warm)))
"""


def first_touch(repeats: int = 5) -> list[dict]:
    """compare_rdms on 10-condition RDMs, cold (a fresh process) and warm, beside the cost of
    a numpy reduction's first use in a process (medians over ``repeats`` processes)."""
    import json
    import subprocess

    runs = [json.loads(subprocess.run([sys.executable, "-c", _FIRST_TOUCH], check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(repeats)]
    rec = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    print(f"first touch: compare_rdms cosine 10 conditions cold {rec['cold'] * 1e6:.0f} us, "
          f"warm {rec['warm'] * 1e6:.0f} us; a numpy reduction's first use "
          f"{rec['first_op'] * 1e6:.0f} us, its second {rec['second_op'] * 1e6:.0f} us")
    return [dict(topic="first_touch", **rec)]


PROFILES = {"gemm": gemm, "ridge": ridge, "rsa": rsa, "snn": snn, "kuramoto": kuramoto,
            "first_touch": first_touch}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PROFILES),
                        help="comma-separated of " + ", ".join(PROFILES))
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    records = []
    for name in args.only.split(","):
        if name not in PROFILES:
            raise SystemExit(f"--only: unknown profile {name!r}; expected some of "
                             f"{', '.join(PROFILES)}")
        records += [{"benchmark": "profile", **r} for r in PROFILES[name]()]
    if not args.no_record:
        append_records(RECORDS, records, machine())
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
