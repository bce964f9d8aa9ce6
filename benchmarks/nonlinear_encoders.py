"""Nonlinear encoders against ridge on the synthetic fMRI dataset: held-out score per ROI,
training throughput, and the in-context encoder on a new subject.

    python benchmarks/nonlinear_encoders.py            # 8 mm (424 responsive voxels)
    python benchmarks/nonlinear_encoders.py --quick    # fewer steps, no record

Data: ``make_synthetic_fmri(1000, 3, resolution_mm=8, seed=0)``; 800 training stimuli
(repeat-averaged), 200 held out, scored against their single-trial betas. Every model reads
the same Gabor-energy map (:func:`brainmodels.datasets.feature_map`, 8 x 8 positions x 8
channels): ridge and the in-context encoder flattened (512 features), the attention and
factorized encoders as a map. The score is the median over an ROI's voxels of the held-out
correlation divided by the true noise ceiling (1 = as good as the noiseless signal).

The in-context encoder is meta-trained on the voxels of subjects 0-2 (features: the Gabor map
plus the category code, 516) and writes the weights of subject 3's voxels from ``k`` context
stimuli; ridge (alpha per voxel by exact leave-one-out) is fitted on the same ``k``.
Times are wall seconds of ``fit`` in this process, compilation included (each model's first
fit), with process CPU seconds; throughput = stimuli (or voxel episodes) processed per second
of training.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _timing import append_records, machine  # benchmarks/ is on sys.path

RECORDS = Path(__file__).resolve().parent / "records" / "nonlinear_encoders.jsonl"
CONTEXTS = (25, 50, 100, 200)


def _averaged(ds):
    resp = ds["responsive"].values
    betas = ds["betas"].isel(voxel=resp)
    return betas.groupby(betas["stimulus_id"]).mean().rename(stimulus_id="stimulus")


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_rois(steps_scale: float) -> list[dict]:
    from brainmodels.datasets import feature_map, make_synthetic_fmri
    from brainmodels.encoders import (
        AttentionRoutingEncoder,
        FactorizedReadout,
        InContextEncoder,
        RidgeEncoder,
        correlation,
    )

    ds = make_synthetic_fmri(1000, 3, resolution_mm=8, seed=0)
    fmap = feature_map(ds)
    Y = _averaged(ds)
    resp = ds["responsive"].values
    perm = np.random.default_rng(0).permutation(ds.sizes["stimulus"])
    test, train = np.sort(perm[:200]), np.sort(perm[200:])
    held = np.isin(ds["stimulus_id"].values, test)
    ids = ds["stimulus_id"].values[held]
    trials = ds["betas"].values[held][:, resp]
    ceiling = ds["noise_ceiling"].values[resp]
    rois = ds["roi"].values[resp]
    flat = fmap.values.reshape(fmap.sizes["stimulus"], -1)
    steps = lambda n: max(50, int(n * steps_scale))  # noqa: E731
    models = {
        "ridge": (lambda: RidgeEncoder(alphas=np.logspace(-2, 5, 15), cv="loo"), "flat"),
        "attention": (lambda: AttentionRoutingEncoder(max_steps=steps(1500)), "map"),
        "factorized": (lambda: FactorizedReadout(max_steps=steps(3000)), "map"),
        "in-context": (lambda: InContextEncoder(max_steps=steps(2000)), "flat"),
    }
    records = []
    for name, (make, kind) in models.items():
        enc = make()
        X = flat if kind == "flat" else fmap
        Xtr = X[train] if kind == "flat" else X.isel(stimulus=train)
        Ytr = Y.values[train] if kind == "flat" else Y.isel(stimulus=train)
        _, wall, cpu = _timed(lambda e=enc, x=Xtr, y=Ytr: e.fit(x, y))
        pred = enc.predict(X[ids] if kind == "flat" else X.isel(stimulus=ids))
        score = np.asarray(correlation(trials, np.asarray(pred))) / ceiling
        per_roi = {str(r): float(np.median(score[rois == r])) for r in np.unique(rois)}
        rec = dict(benchmark="nonlinear_encoders", job="rois", model=name, fit_wall=wall,
                   fit_cpu=cpu, per_roi=per_roi, voxels=int(resp.sum()),
                   train_stimuli=int(train.size))
        if name != "ridge":
            n_steps = int(enc.n_steps_)  # a step: batch_size stimuli, or voxel episodes (ICL)
            rec.update(steps=n_steps, best_step=int(enc.best_step_ or 0),
                       throughput=n_steps * enc.batch_size / wall,
                       throughput_unit="voxel episodes/s" if name == "in-context"
                       else "stimuli/s", batch_size=int(enc.batch_size))
        records.append(rec)
        print(f"  {name:11s} fit {wall:6.1f} s ({cpu:6.1f} CPU-s)  "
              + "  ".join(f"{r} {v:.2f}" for r, v in per_roi.items()), flush=True)
    return records


def bench_new_subject(steps_scale: float) -> list[dict]:
    from brainmodels.datasets import make_synthetic_fmri
    from brainmodels.encoders import InContextEncoder, RidgeEncoder, correlation

    subjects = []
    for k in range(4):
        ds = make_synthetic_fmri(1000, 2, resolution_mm=8, seed=0, subject=k)
        X = np.concatenate([ds["features_retinotopic"].values,
                            ds["features_category"].values], 1)
        resp = ds["responsive"].values
        subjects.append((X, _averaged(ds).values, ds["signal"].values[:, resp],
                         ds["roi_kind"].values[resp]))
    X = subjects[0][0]
    train, test = np.arange(800), np.arange(800, 1000)
    Y = np.concatenate([s[1][train] for s in subjects[:3]], 1)
    enc = InContextEncoder(max_steps=max(50, int(2000 * steps_scale)))
    _, wall, cpu = _timed(lambda: enc.fit(X[train], Y))
    _, Yn, signal, kind = subjects[3]
    records = []
    for k in CONTEXTS:
        ctx = train[:k]
        _, t_cond, _ = _timed(lambda c=ctx: enc.condition(X[c], Yn[c]))
        ours = np.asarray(correlation(signal[test], enc.predict(X[test])))
        ridge = RidgeEncoder(alphas=np.logspace(-2, 6, 17), cv="loo")
        _, t_ridge, _ = _timed(lambda c=ctx, r=ridge: r.fit(X[c], Yn[c]))
        theirs = np.asarray(correlation(signal[test], ridge.predict(X[test])))
        row = dict(benchmark="nonlinear_encoders", job="new_subject", context=k,
                   meta_train_wall=wall, meta_train_cpu=cpu, meta_steps=int(enc.n_steps_),
                   meta_voxels=int(Y.shape[1]), voxels=int(Yn.shape[1]),
                   used_context=int(enc.n_context_), condition_wall=t_cond,
                   ridge_wall=t_ridge)
        for name, r in (("in_context", ours), ("ridge", theirs)):
            row[f"{name}_mean_r"] = float(r.mean())
            row[f"{name}_se_r"] = float(r.std(ddof=1) / np.sqrt(r.size))
            for c in ("retinotopic", "category"):
                row[f"{name}_{c}"] = float(np.median(r[kind == c]))
        diff = ours - theirs
        row["paired_se"] = float(diff.std(ddof=1) / np.sqrt(diff.size))
        records.append(row)
        print(f"  new subject, {k:3d} context stimuli: in-context r {ours.mean():.3f}, "
              f"ridge {theirs.mean():.3f} (paired SE {row['paired_se']:.3f})", flush=True)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps; no record")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    where = machine(numpy=np.__version__)
    print(f"machine: {where}", flush=True)
    scale = 0.1 if args.quick else 1.0
    records = bench_rois(scale) + bench_new_subject(scale)
    if not (args.no_record or args.quick):
        append_records(RECORDS, records, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
