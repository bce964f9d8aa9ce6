"""Benchmark brainmodels.rsa against rsatoolbox: same data, same work, at 10, 100 and 500
conditions, cold and warm.

Jobs, per size (K conditions):

- ``compare:<method>``: all 10 x 10 pairs of two stacks of K-condition RDMs (cosine, corr,
  spearman, tau-a, corr_cov);
- ``crossnobis``: a crossnobis RDM of K conditions x 8 runs x 500 voxels;
- ``bootstrap:<method>``: a stimulus bootstrap of 5 model RDMs against 10 subjects' RDMs, 1,000
  samples, corr and tau-a, without a noise ceiling on either side (rsatoolbox's
  ``boot_noise_ceil=False``). Where rsatoolbox would take minutes it runs fewer samples and its
  times are scaled to 1,000 (its loop is linear in samples; the record says how many).

Each (size, job, side) runs in a fresh process: the first call is *cold* (JAX compilation,
numba's cached-kernel load and all first-call work included, imports excluded), then the median
of ``--repeats`` calls is *warm*; comparisons and RDMs take the median of 3 such processes
(a first call of ~0.1 ms varies severalfold between processes). For brainmodels a second pair of processes measures the first
call with JAX's persistent compilation cache filled. Both sides run in float64
(``jax_enable_x64``: rsatoolbox computes in float64). brainmodels' host kernels use a thread
pool (2 threads here) where rsatoolbox runs one thread: CPU seconds are recorded beside wall
time. Agreement: compare and crossnobis outputs are checked entry by entry; bootstrap standard
errors (independent draws on the two sides) agree to Monte-Carlo error.

Records go to ``benchmarks/records/rsa.jsonl``; ``python benchmarks/_records.py`` writes the
README table from them. ``--stochastic`` also times the stochastic shape metric (no peer on
PyPI; printed, not recorded). Not a test.

Usage: python benchmarks/rsa.py [--quick] [--sizes 10 100 500] [--jobs ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # rsatoolbox's bootstrap progress bar

RECORDS = Path(__file__).with_name("records") / "rsa.jsonl"
SIZES = (10, 100, 500)
COMPARE_METHODS = ("cosine", "corr", "spearman", "tau-a", "corr_cov")
JOBS = (*(f"compare:{m}" for m in COMPARE_METHODS), "crossnobis", "bootstrap:corr",
        "bootstrap:tau-a")
N_RDMS, RUNS, VOXELS = 10, 8, 500
N_MODELS, N_SUBJECTS, N_BOOT = 5, 10, 1000


def peer_samples(job: str, k: int) -> int:
    """Bootstrap samples rsatoolbox runs (its times are scaled to N_BOOT)."""
    if job == "bootstrap:corr":
        return N_BOOT if k <= 100 else 100
    return {10: 100, 100: 20}.get(k, 4)  # tau-a: scipy's kendalltau per pair and sample


def _compare_data(k):
    n = k * (k - 1) // 2
    rng = np.random.default_rng(0)
    return rng.random((N_RDMS, n)), rng.random((N_RDMS, n))


def _crossnobis_data(k):
    rng = np.random.default_rng(1)
    cond = np.tile(np.arange(k), RUNS)
    run = np.repeat(np.arange(RUNS), k)
    x = rng.standard_normal((k * RUNS, VOXELS)) + rng.standard_normal((k, VOXELS))[cond]
    return x, cond, run


def _bootstrap_data(k):
    n = k * (k - 1) // 2
    rng = np.random.default_rng(2)
    truth = rng.random(n)
    data = truth + 0.5 * rng.standard_normal((N_SUBJECTS, n))
    models = np.stack([truth + s * rng.standard_normal(n)
                       for s in np.linspace(0.2, 2, N_MODELS)])
    return models, data


def _brainmodels(job: str, k: int):
    """A zero-argument call of brainmodels for ``job`` returning a numpy array."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import brainmodels.rsa as bm

    if job.startswith("compare:"):
        method = job.split(":")[1]
        a, b = _compare_data(k)
        return lambda: np.asarray(bm.compare_rdms(a, b, method))
    if job == "crossnobis":
        x, cond, run = _crossnobis_data(k)
        return lambda: np.asarray(bm.rdm(x, "crossnobis", conditions=cond, runs=run))
    method = job.split(":")[1]
    models, data = _bootstrap_data(k)

    def boot():
        res = bm.bootstrap_compare(models, data, method, key=jax.random.key(0),
                                   n_bootstrap=N_BOOT, over="stimulus",
                                   with_noise_ceiling=False)
        return np.asarray(res.se.values)
    return boot


def _rsatoolbox(job: str, k: int):
    warnings.filterwarnings("ignore")  # rsatoolbox's descriptor casts and tie warnings
    import rsatoolbox
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm, compare

    if job.startswith("compare:"):
        method = job.split(":")[1]
        a, b = _compare_data(k)
        ra, rb = RDMs(a), RDMs(b)
        return lambda: np.asarray(compare(ra, rb, method=method))
    if job == "crossnobis":
        x, cond, run = _crossnobis_data(k)
        ds = Dataset(x, obs_descriptors={"cond": cond, "run": run})
        return lambda: calc_rdm(ds, "crossnobis", descriptor="cond",
                                cv_descriptor="run").get_matrices()[0]
    method = job.split(":")[1]
    models, data = _bootstrap_data(k)
    rs_models = [rsatoolbox.model.ModelFixed(f"m{i}", RDMs(models[i][None]))
                 for i in range(N_MODELS)]
    rs_data = RDMs(data)
    n_ref = peer_samples(job, k)

    def boot():
        res = rsatoolbox.inference.eval_bootstrap_pattern(
            rs_models, rs_data, method=method, N=n_ref, boot_noise_ceil=False)
        evals = np.asarray(res.evaluations).reshape(n_ref, N_MODELS, -1).mean(axis=2)
        return np.nanstd(evals, axis=0, ddof=1)
    return boot


def child(side: str, k: int, job: str, repeats: int, out: str) -> None:
    """Fresh process: the first call (cold), then ``repeats`` warm calls; prints JSON and
    saves the result to ``out`` (.npy)."""
    run = (_brainmodels if side == "brainmodels" else _rsatoolbox)(job, k)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run()
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    np.save(out, np.asarray(result, dtype=np.float64))
    print(json.dumps(dict(cold_wall=cold, cold_cpu=cold_cpu, warm_wall=float(np.median(walls)),
                          warm_cpu=float(np.median(cpus)))))


def _run_child(side, k, job, repeats, out, cache="off") -> dict:
    env = {**os.environ, "BRAINMODELS_JAX_CACHE": cache}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", side,
                           str(k), job, str(repeats), out], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        raise RuntimeError(f"{side} {job} K={k} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_child(side, k, job, repeats, out, n, cache="off") -> dict:
    """:func:`_run_child` in ``n`` fresh processes: the median of each timing."""
    runs = [_run_child(side, k, job, repeats, out, cache) for _ in range(n)]
    return {key: float(np.median([r[key] for r in runs])) for key in runs[0]}


def bench(k: int, job: str, repeats: int) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        # the longest job (tau-a bootstrap at 500 conditions, ~40 s a call): one warm call
        warm = 1 if job.startswith("bootstrap") and k >= 500 else repeats
        fast = not job.startswith("bootstrap")
        # a first call of ~0.1 ms varies by 5x between processes: the median of 3 processes
        ours = _median_child("brainmodels", k, job, warm, f"{tmp}/bm.npy", 3 if fast else 1)
        _run_child("brainmodels", k, job, 0, f"{tmp}/fill.npy", cache=tmp)  # fills the cache
        cached = _median_child("brainmodels", k, job, 0, f"{tmp}/cached.npy", 3 if fast else 1,
                               cache=tmp)
        peer = _median_child("rsatoolbox", k, job, repeats if fast else 0, f"{tmp}/peer.npy",
                             3 if fast else 1)
        a, b = np.load(f"{tmp}/bm.npy"), np.load(f"{tmp}/peer.npy")
    config = dict(conditions=k)
    if job.startswith("bootstrap"):
        n_ref = peer_samples(job, k)
        scale = N_BOOT / n_ref
        # one process, one call: its first call is its only call (no compilation to pay)
        peer["warm_wall"], peer["warm_cpu"] = peer["cold_wall"], peer["cold_cpu"]
        peer = {key: v * scale for key, v in peer.items()}
        agreement = dict(max_rel_se_difference=float(np.max(np.abs(a - b) / b)),
                         # SD of a relative SE difference: both sides' SEs are estimates
                         se_noise=float(np.sqrt(1 / (2 * n_ref) + 1 / (2 * N_BOOT))))
        config.update(models=N_MODELS, subjects=N_SUBJECTS, samples=N_BOOT,
                      peer_samples=n_ref)
    else:
        agreement = dict(max_abs_difference=float(np.max(np.abs(a - b))))
        config.update(dict(rdms=N_RDMS) if job.startswith("compare") else
                      dict(runs=RUNS, voxels=VOXELS))
    base = dict(benchmark="rsa", conditions=k, job=job, config=config, dtype="float64")
    records.append(dict(base, side="brainmodels", **ours, cold_cached_wall=cached["cold_wall"],
                        **agreement))
    records.append(dict(base, side="rsatoolbox", **peer))
    print(f"  K={k:<4} {job:18s} brainmodels cold {ours['cold_wall']:8.4f} s (cached "
          f"{cached['cold_wall']:8.4f}) warm {ours['warm_wall']:9.5f} s ({ours['warm_cpu']:.4f}"
          f" CPU-s) | rsatoolbox cold {peer['cold_wall']:8.4f} warm {peer['warm_wall']:9.5f} "
          f"| x{peer['cold_wall'] / ours['cold_wall']:6.1f} cold  "
          f"x{peer['warm_wall'] / ours['warm_wall']:6.1f} warm | {agreement}", flush=True)
    return records


def bench_stochastic(n_net=6, k=100, u=50, n_iter=10):
    import jax

    jax.config.update("jax_enable_x64", True)
    import brainmodels.rsa as bm

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
    t = time.perf_counter()
    d = np.asarray(bm.pairwise_distances(nets, "gaussian", **kw))
    t_bm = time.perf_counter() - t
    pairs = n_net * (n_net - 1) // 2
    print(f"pairwise Gaussian stochastic shape: {n_net} networks ({pairs} pairs), {k} stimuli, "
          f"{u} units, {n_iter} iterations: {t_bm:.2f} s (first call incl. compile "
          f"{t_first:.2f} s; no peer on PyPI); {t_bm / pairs:.2f} s per pair")
    conv = bm.stochastic_shape_distance(nets[0], nets[1], 1.0, n_iter=30 * n_iter,
                                        n_restarts=0, key=jax.random.key(0))
    print(f"    (pair 0-1: d = {d[0, 1]:.8f} at {n_iter} iterations, {conv:.8f} converged: "
          f"relative error {abs(d[0, 1] - conv) / conv:.1e})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 conditions only")
    parser.add_argument("--sizes", nargs="+", type=int, default=None)
    parser.add_argument("--jobs", nargs="+", choices=JOBS, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="warm calls per side (median)")
    parser.add_argument("--stochastic", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, k, job, repeats, out = args.child
        child(side, int(k), job, int(repeats), out)
        return 0
    from importlib.metadata import version

    from _timing import append_records, machine  # benchmarks/ is on sys.path

    where = machine(numpy=np.__version__, rsatoolbox=version("rsatoolbox"))
    print(f"machine: {where}", flush=True)
    records = []
    for k in args.sizes or ((10,) if args.quick else SIZES):
        for job in args.jobs or JOBS:
            records += bench(k, job, args.repeats)
    if args.stochastic:
        bench_stochastic()
    if records and not args.no_record:
        append_records(RECORDS, records, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
