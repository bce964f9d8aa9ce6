"""Banded ridge: brainmodels BandedRidgeEncoder against himalaya GroupRidgeCV, same process.

Usage::

    python benchmarks/banded_ridge.py                 # small, medium and the issue's large size
    python benchmarks/banded_ridge.py --quick         # small and medium only
    python benchmarks/banded_ridge.py --sizes small --cluster   # + LocalCluster 1 vs 2 workers
    python benchmarks/banded_ridge.py --scale 200000  # out of core: Y read chunk by chunk

Both sides get the same float32 data, the same band-weight candidates (``band_candidates``:
the first uniform, then Dirichlet samples), the same alphas, the same 3 contiguous folds, the
same per-fold mean R^2 criterion (``cv_average="folds"``, himalaya's) and both refit. Per size:

* cold: the first fit in a fresh Python process (imports excluded, JAX compilation included:
  what a user's script pays), for both sides (himalaya compiles nothing, but its first call
  also pays its numpy warm-up);
* warm: median of ``--repeats`` further fits in one process;
* CPU seconds (``time.process_time``, all threads) next to wall seconds;
* agreement: share of voxels with the same (band weights, alpha) and the largest difference
  of held-out R^2 over voxels.

Each run appends records to ``benchmarks/records/banded_ridge.jsonl`` (one JSON object per
size and side, with the machine); ``python benchmarks/_records.py`` turns the newest records into
the README table. Timings on a shared 2-core machine vary by 10-20 %. Not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _timing import append_records, machine, median_time  # benchmarks/ is on sys.path

SIZES = {
    # name: n samples, features per space, voxels, alphas, folds, candidates
    "small": dict(n=300, p=(20, 20), v=500, n_alphas=20, folds=3, n_iter=10),
    "medium": dict(n=1000, p=(100, 100), v=5000, n_alphas=20, folds=3, n_iter=10),
    "large": dict(n=3000, p=(500, 500), v=5000, n_alphas=20, folds=3, n_iter=10),
}
RECORDS = Path(__file__).with_name("records") / "banded_ridge.jsonl"


def _data(n, p, v, seed=0):
    """Two float32 feature spaces; half the voxels driven by each, noise of equal variance."""
    rng = np.random.default_rng(seed)
    n_all = n + max(100, n // 4)
    Xs = [rng.standard_normal((n_all, q), dtype=np.float32) for q in p]
    half = v // 2
    Y = np.empty((n_all, v), dtype=np.float32)
    Y[:, :half] = Xs[0] @ (rng.standard_normal((p[0], half), dtype=np.float32) / np.sqrt(p[0]))
    Y[:, half:] = Xs[1] @ (rng.standard_normal((p[1], v - half), dtype=np.float32)
                           / np.sqrt(p[1]))
    Y += rng.standard_normal(Y.shape, dtype=np.float32)
    return [x[:n] for x in Xs], Y[:n], [x[n:] for x in Xs], Y[n:]


def _r2(Y, P):
    Y = Y.astype(np.float64)
    return 1 - ((Y - P) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)


def _fitters(size):
    from sklearn.model_selection import KFold

    from brainmodels.encoders import BandedRidgeEncoder, band_candidates

    cfg = SIZES[size]
    alphas = np.logspace(-2, 6, cfg["n_alphas"])
    cands = band_candidates(len(cfg["p"]), cfg["n_iter"], seed=0)

    def ours(Xs, Y):
        return BandedRidgeEncoder(alphas=alphas, cv=cfg["folds"], n_iter=cands,
                                  cv_average="folds").fit(Xs, Y)

    def himalaya(Xs, Y):
        from himalaya.backend import set_backend
        from himalaya.ridge import GroupRidgeCV
        from himalaya.scoring import r2_score

        set_backend("numpy")
        groups = np.repeat(np.arange(len(Xs)), [x.shape[1] for x in Xs])
        return GroupRidgeCV(groups=groups, cv=KFold(cfg["folds"]), fit_intercept=True,
                            solver_params=dict(n_iter=cands, alphas=alphas,
                                               score_func=r2_score, progress_bar=False)
                            ).fit(np.concatenate(Xs, 1), Y)

    return {"brainmodels": ours, "himalaya": himalaya}


def _choices(side, model):
    if side == "brainmodels":
        return np.asarray(model.band_weights_), np.asarray(model.alphas_)
    return np.exp(model.deltas_) * model.best_alphas_[None], np.asarray(model.best_alphas_)


def _predict(side, model, Xs):
    return model.predict(Xs) if side == "brainmodels" else model.predict(np.concatenate(Xs, 1))


def cold_child(size: str, side: str) -> None:
    """First fit in this (fresh) process: prints one JSON line."""
    Xs, Y, _, _ = _data(SIZES[size]["n"], SIZES[size]["p"], SIZES[size]["v"])
    fit = _fitters(size)[side]
    t0, c0 = time.perf_counter(), time.process_time()
    fit(Xs, Y)
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))


def _cold(size, side):
    out = subprocess.run([sys.executable, __file__, "--cold-child", size, side],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_size(size: str, repeats: int) -> list[dict]:
    cfg = SIZES[size]
    Xs, Y, Xte, Yte = _data(cfg["n"], cfg["p"], cfg["v"])
    fitters = _fitters(size)
    results, models = {}, {}
    for side, fit in fitters.items():
        cold = _cold(size, side)
        if side == "himalaya" and size == "large":
            # himalaya compiles nothing: its first call is its warm call; one more run here
            # (the model is needed for the agreement) instead of a warm-up and 3 repeats
            t = median_time(lambda fit=fit: fit(Xs, Y), 1)
        else:
            fit(Xs, Y)  # this process's warm-up
            t = median_time(lambda fit=fit: fit(Xs, Y), repeats)
        models[side] = t.out
        results[side] = dict(cold_wall=cold["wall"], cold_cpu=cold["cpu"], warm_wall=t.median,
                             warm_cpu=sorted(t.cpu)[len(t.cpu) // 2], warm_runs=t.times)
    g0, a0 = _choices("brainmodels", models["brainmodels"])
    g1, a1 = _choices("himalaya", models["himalaya"])
    same = np.isclose(a0, a1, rtol=1e-4) & np.all(np.isclose(g0, g1, atol=1e-4), axis=0)
    r2s = {s: _r2(Yte, _predict(s, m, Xte)) for s, m in models.items()}
    agree = dict(same_hyperparameters=float(same.mean()),
                 max_abs_r2_difference=float(np.max(np.abs(r2s["brainmodels"]
                                                           - r2s["himalaya"]))),
                 mean_r2_brainmodels=float(r2s["brainmodels"].mean()),
                 mean_r2_himalaya=float(r2s["himalaya"].mean()))
    records = []
    for side, res in results.items():
        records.append(dict(benchmark="banded_ridge", size=size, side=side,
                            config={k: list(v) if isinstance(v, tuple) else v
                                    for k, v in cfg.items()},
                            dtype="float32", **res, **agree))
    ours, peer = results["brainmodels"], results["himalaya"]
    print(f"{size:6s} n={cfg['n']} p={cfg['p']} v={cfg['v']}: "
          f"cold {ours['cold_wall']:.2f} s vs himalaya {peer['cold_wall']:.2f} s "
          f"({peer['cold_wall'] / ours['cold_wall']:.1f}x); warm {ours['warm_wall']:.2f} s "
          f"({ours['warm_cpu']:.1f} CPU-s) vs {peer['warm_wall']:.2f} s "
          f"({peer['warm_cpu']:.1f} CPU-s) ({peer['warm_wall'] / ours['warm_wall']:.1f}x); "
          f"same (gamma, alpha) {agree['same_hyperparameters']:.1%}, "
          f"max |dR2| {agree['max_abs_r2_difference']:.1e}", flush=True)
    return records


def bench_cluster(size: str) -> list[dict]:
    """The same fit on a dask LocalCluster of 1 and of 2 single-threaded workers."""
    from distributed import Client, LocalCluster

    from brainmodels.encoders import BandedRidgeEncoder, band_candidates

    cfg = SIZES[size]
    Xs, Y, _, _ = _data(cfg["n"], cfg["p"], cfg["v"])
    kw = dict(alphas=np.logspace(-2, 6, cfg["n_alphas"]), cv=cfg["folds"],
              n_iter=band_candidates(2, cfg["n_iter"], seed=0), cv_average="folds")
    records = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=40) as lc, Client(lc) as client:
            chunk = -(-cfg["v"] // (2 * workers))
            BandedRidgeEncoder(**kw).fit(Xs, Y, client=client, voxel_chunk=chunk)  # compile
            t = median_time(lambda c=client, k=chunk: BandedRidgeEncoder(**kw).fit(
                Xs, Y, client=c, voxel_chunk=k), 2)
        records.append(dict(benchmark="banded_ridge_cluster", size=size, side="brainmodels",
                            workers=workers, warm_wall=t.median, chunks=2 * workers))
        print(f"LocalCluster {workers} worker(s) x 1 thread, {size}: {t.median:.2f} s",
              flush=True)
    return records


SCALE = dict(n=1000, p=(100, 100), n_alphas=20, folds=3, n_iter=10)


def _scale_make(path: str, v: int, chunk: int, cfg: dict) -> None:
    """Write Y (n, v) float32 to a netCDF file one voxel chunk at a time (never all of it in
    memory), chunked on disk along voxels; the design goes beside it as .npy files."""
    import h5netcdf

    rng = np.random.default_rng(0)
    Xs = [rng.standard_normal((cfg["n"], q), dtype=np.float32) for q in cfg["p"]]
    for i, x in enumerate(Xs):
        np.save(f"{path}.X{i}.npy", x)
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"sample": cfg["n"], "voxel": v}
        var = f.create_variable("Y", ("sample", "voxel"), np.float32,
                                chunks=(cfg["n"], min(chunk, v)))
        for a in range(0, v, chunk):
            b = min(a + chunk, v)
            r = np.random.default_rng([1, a])
            space = (np.arange(a, b) % 2)  # alternate voxels driven by space 0 and space 1
            W = [r.standard_normal((q, b - a), dtype=np.float32) / np.sqrt(q) for q in cfg["p"]]
            y = np.where(space == 0, Xs[0] @ W[0], Xs[1] @ W[1])
            var[:, a:b] = y + r.standard_normal(y.shape, dtype=np.float32)


def _scale_fit(path: str, chunk: int, cfg: dict) -> None:
    """Fresh process: open Y lazily, fit chunk by chunk, print one JSON line of figures."""
    import resource

    import xarray as xr

    from brainmodels.encoders import BandedRidgeEncoder, band_candidates

    Xs = [np.load(f"{path}.X{i}.npy") for i in range(len(cfg["p"]))]
    Y = xr.open_dataset(path, engine="h5netcdf", chunks={"voxel": chunk})["Y"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    stamps = []

    def progress(items):
        for item in items:
            stamps.append(time.perf_counter())
            yield item
        stamps.append(time.perf_counter())

    t0, c0 = time.perf_counter(), time.process_time()
    enc = BandedRidgeEncoder(alphas=np.logspace(-2, 6, cfg["n_alphas"]), cv=cfg["folds"],
                             n_iter=band_candidates(2, cfg["n_iter"], seed=0),
                             cv_average="folds")
    model = path[:-3] + ".model.nc"  # the fitted model, written chunk by chunk
    enc.fit(Xs, Y, voxel_chunk=chunk, progress=progress, store=model)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    per_chunk = np.diff(stamps)
    driven = np.asarray(enc.band_weights_)[np.arange(Y.shape[1]) % 2, np.arange(Y.shape[1])]
    print(json.dumps(dict(
        wall=wall, cpu=cpu, peak_rss_gb=peak, rss_before_fit_gb=before,
        first_chunk=float(per_chunk[0]), chunk_median=float(np.median(per_chunk[1:])),
        chunks=len(per_chunk), y_gb=Y.size * 4 / 2**30,
        coef_gb=int(np.prod(enc.coef_.shape)) * enc.coef_.dtype.itemsize / 2**30,
        model_file_gb=Path(model).stat().st_size / 2**30,
        driving_space_weighted_most=float(np.mean(driven > 0.5)))))


def bench_scale(v: int, chunk: int, folder: str, cfg: dict) -> list[dict]:
    """200,000 voxels out of core: Y written to netCDF, opened dask-backed, fitted chunk by
    chunk with the model written chunk by chunk into a store (``fit(store=)``), in a fresh
    process whose peak resident memory is recorded."""
    path = str(Path(folder) / f"scale_{v}.nc")
    here = str(Path(__file__).resolve())
    spec = json.dumps(cfg)
    subprocess.run([sys.executable, here, "--scale-child", "make", path, str(v), str(chunk),
                    spec], check=True)
    out = subprocess.run([sys.executable, here, "--scale-child", "fit", path, str(v),
                          str(chunk), spec], check=True, capture_output=True, text=True)
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    for name in (path, path + ".X0.npy", path + ".X1.npy", path[:-3] + ".model.nc"):
        Path(name).unlink(missing_ok=True)
    print(f"out of core: {v} voxels (Y {fig['y_gb']:.2f} GB on disk), chunks of {chunk}: "
          f"{fig['wall']:.0f} s ({fig['cpu']:.0f} CPU-s), {fig['chunk_median']:.2f} s per chunk "
          f"(first {fig['first_chunk']:.2f} s), peak RSS {fig['peak_rss_gb']:.2f} GB "
          f"({fig['rss_before_fit_gb']:.2f} GB before the fit)", flush=True)
    return [dict(benchmark="banded_ridge_scale", side="brainmodels", v=v, voxel_chunk=chunk,
                 config=dict(n=cfg["n"], p=list(cfg["p"]), n_alphas=cfg["n_alphas"],
                             folds=cfg["folds"], n_iter=cfg["n_iter"]), **fig)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and medium sizes only")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cluster", action="store_true", help="LocalCluster 1 vs 2 workers")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--scale", type=int, default=None, metavar="VOXELS",
                        help="only the out-of-core run on this many voxels (e.g. 200000)")
    parser.add_argument("--voxel-chunk", type=int, default=10_000)
    parser.add_argument("--scale-n", type=int, default=SCALE["n"], help="--scale samples")
    parser.add_argument("--scale-p", default=",".join(map(str, SCALE["p"])),
                        help="--scale features per space, A,B (default 100,100)")
    parser.add_argument("--scratch", default="/tmp", help="folder for the --scale netCDF file")
    parser.add_argument("--cold-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--scale-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_child:
        cold_child(*args.cold_child)
        return 0
    if args.scale_child:
        kind, path, v, chunk, spec = args.scale_child
        cfg = json.loads(spec)
        if kind == "make":
            _scale_make(path, int(v), int(chunk), cfg)
        else:
            _scale_fit(path, int(chunk), cfg)
        return 0
    sizes = [] if args.scale else args.sizes or (["small", "medium"] if args.quick
                                                 else list(SIZES))
    where = machine()
    print(f"machine: {where}", flush=True)
    records = []
    for size in sizes:
        records += bench_size(size, args.repeats)
    if args.cluster:
        records += bench_cluster(sizes[0] if sizes else "small")
    if args.scale:
        cfg = {**SCALE, "n": args.scale_n, "p": [int(q) for q in args.scale_p.split(",")]}
        records += bench_scale(args.scale, args.voxel_chunk, args.scratch, cfg)
    if not args.no_record:
        append_records(RECORDS, records, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
