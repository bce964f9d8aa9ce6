"""README tables generated from the benchmark records, never typed.

Benchmarks append JSON lines to ``benchmarks/records/<name>.jsonl``. This script renders the
newest record of every (size, side) into the README between ``<!-- records:<name> -->`` and
``<!-- /records:<name> -->``::

    python benchmarks/_records.py           # rewrite the README blocks
    python benchmarks/_records.py --check   # exit 1 if a block differs (run by the tests)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"


def load(name: str) -> list[dict]:
    path = HERE / "records" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _newest(records: list[dict], *keys: str) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for r in records:  # appended in time order: later lines win
        out[tuple(r.get(k) for k in keys)] = r
    return out


def _measured_on(records: dict, what: str) -> list[str]:
    """The closing line of a table: the machine of its records, then ``what``."""
    machine = next(iter(records.values()))["machine"] if records else {}
    if not machine:
        return []
    versions = ", ".join(f"{k} {machine[k]}" for k in ("jax", "numpy") if k in machine)
    return ["", f"Measured on {machine.get('cpus')} CPU cores ({machine.get('device')}), "
                f"{versions}; {what}"]


def _dur(x: float) -> str:
    """A duration with its unit: 45 us, 0.17 ms, 3.1 ms, 0.42 s, 28 s."""
    if x < 1e-3:
        return f"{x * 1e6:.0f} us"
    if x < 0.1:
        return f"{x * 1e3:.2g} ms"
    return f"{_s(x)} s"


def _s(x: float) -> str:
    """Seconds with two significant digits (0.07, 0.4, 3.1, 28, 142)."""
    return f"{x:.2g}" if x < 10 else f"{x:.0f}"


def _banded_ridge(records: list[dict]) -> str:
    fits = _newest([r for r in records if r["benchmark"] == "banded_ridge"], "size", "side")
    rows = ["| size (n; features per space; voxels) | himalaya `GroupRidgeCV` cold / warm "
            "| brainmodels cold / warm | ratio cold / warm | same (gamma, alpha) | max abs "
            "dR2 |", "|---|---|---|---|---|---|"]
    for size in ("small", "medium", "large"):
        ours, peer = fits.get((size, "brainmodels")), fits.get((size, "himalaya"))
        if ours is None or peer is None:
            continue
        c = ours["config"]
        rows.append(
            f"| {size} ({c['n']}; {' + '.join(map(str, c['p']))}; {c['v']}) "
            f"| {_s(peer['cold_wall'])} / {_s(peer['warm_wall'])} s "
            f"({_s(peer['warm_cpu'])} CPU-s) "
            f"| {_s(ours['cold_wall'])} / {_s(ours['warm_wall'])} s "
            f"({_s(ours['warm_cpu'])} CPU-s) "
            f"| {peer['cold_wall'] / ours['cold_wall']:.1f}x / "
            f"{peer['warm_wall'] / ours['warm_wall']:.1f}x "
            f"| {ours['same_hyperparameters']:.1%} | {ours['max_abs_r2_difference']:.0e} |")
    cluster = _newest([r for r in records if r["benchmark"] == "banded_ridge_cluster"],
                      "workers")
    if cluster:
        parts = [f"{w} worker{'s' if w > 1 else ''} {_s(r['warm_wall'])} s ({r['size']})"
                 for (w,), r in sorted(cluster.items())]
        rows.append("")
        rows.append("dask LocalCluster (single-threaded workers), same fit: " + ", ".join(parts)
                    + ".")
    scale = [r for r in records if r["benchmark"] == "banded_ridge_scale"]
    for r in _newest([dict(r, n=r["config"]["n"]) for r in scale], "v", "n").values():
        v = r["v"]
        c = r["config"]
        rows.append("")
        rows.append(
            f"Out of core: {v:,} voxels (n {c['n']}; {' + '.join(map(str, c['p']))} features; "
            f"Y {r['y_gb']:.2f} GB in a netCDF file opened dask-backed, read {r['voxel_chunk']:,} "
            f"voxels at a time): {_s(r['wall'])} s ({_s(r['cpu'])} CPU-s), "
            f"{_s(r['chunk_median'])} s per chunk after the first ({_s(r['first_chunk'])} s, "
            f"compilation included); peak resident memory {r['peak_rss_gb']:.2f} GB "
            f"({r['rss_before_fit_gb']:.2f} GB before the fit; "
            + (f"the model, {r['model_file_gb']:.2f} GB, written chunk by chunk to a store"
               if "model_file_gb" in r else f"coefficients {r['coef_gb']:.2f} GB in memory")
            + f"); the driving space got the larger band weight in "
            f"{r['driving_space_weighted_most']:.1%} of voxels.")
    rows += _measured_on(fits, "float32 on both sides; 3 folds, 20 alphas, 10 band-weight "
                               "candidates; cold = first fit in a fresh process (compilation "
                               "included).")
    return "\n".join(rows)


def _kuramoto(records: list[dict]) -> str:
    runs = _newest([r for r in records if r["benchmark"] == "kuramoto"], "size", "side")
    rows = ["| N (RK4 steps) | side | cold | cold, cache filled | warm (CPU-s) | final r "
            "| brainmodels of the same dtype vs this side: cold / cached / warm |",
            "|---|---|---|---|---|---|---|"]
    for size in ("small", "medium", "large"):
        ours = runs.get((size, "brainmodels float32"))
        if ours is None:
            continue
        for side in ("brainmodels float32", "brainmodels float64", "numpy float32",
                     "numpy float64"):
            r = runs.get((size, side))
            if r is None:
                continue
            mine = runs.get((size, "brainmodels " + side.split()[-1]))
            ratio = "" if side.startswith("brainmodels") or mine is None else (
                f"{r['cold_wall'] / mine['cold_wall']:.1f}x / "
                f"{r['cold_cached_wall'] / mine['cold_cached_wall']:.1f}x / "
                f"{r['warm_wall'] / mine['warm_wall']:.1f}x")
            cached = f"{_s(r['cold_cached_wall'])} s" if side.startswith("brainmodels") else "="
            rows.append(f"| {r['n']:,} ({r['steps']:,}) | {side} | {_s(r['cold_wall'])} s | "
                        f"{cached} | {_s(r['warm_wall'])} s ({_s(r['warm_cpu'])}) | "
                        f"{r['r']:.4f} | {ratio} |")
    rows += _measured_on(runs, "all-to-all (mean field, the same arithmetic on both sides), "
                               "dt 0.05, K 3; cold = first call in a fresh process (JAX "
                               "compilation included, persistent cache off); cache filled = a "
                               "later process with brainmodels' default persistent compilation "
                               "cache; a ratio > 1 means brainmodels is faster, < 1 slower. "
                               "At N = 10^4, pinned to one core, brainmodels float32 runs in "
                               "0.44 s instead of 0.65 s: XLA splits these 10^4-element "
                               "operations over both cores at a loss.")
    return "\n".join(rows)


def _ridge(records: list[dict]) -> str:
    runs = _newest([r for r in records if r["benchmark"] == "ridge"], "size", "method", "side")
    rows = ["| n x p x voxels | CV | peer (dtype): cold / warm (CPU-s) | brainmodels float32: "
            "cold / warm (CPU-s) | ratio cold / warm | same alpha | max abs dR2 |",
            "|---|---|---|---|---|---|---|"]
    for size in ("small", "medium", "large"):
        for method in ("kfold", "loo"):
            ours, peer = runs.get((size, method, "brainmodels")), runs.get((size, method, "peer"))
            if ours is None or peer is None:
                continue
            rows.append(
                f"| {ours['n']:,} x {ours['p']:,} x {ours['v']:,} "
                f"| {'5-fold' if method == 'kfold' else 'exact LOO'} "
                f"| {peer['name']} ({peer['dtype']}): {_s(peer['cold_wall'])} / "
                f"{_s(peer['warm_wall'])} s ({_s(peer['warm_cpu'])}) "
                f"| {_s(ours['cold_wall'])} / {_s(ours['warm_wall'])} s ({_s(ours['warm_cpu'])}) "
                f"| {peer['cold_wall'] / ours['cold_wall']:.1f}x / "
                f"{peer['warm_wall'] / ours['warm_wall']:.1f}x "
                f"| {ours['same_alphas']:.1%} | {ours['max_abs_r2_difference']:.0e} |")
    rows += _measured_on(runs, "15 alphas (logspace -2..8); cold = first fit in a fresh "
                               "process (JAX compilation included, persistent cache off); warm "
                               "= median of 3 fits; designs up to n x min(n, p) = 150,000 run "
                               "on the host (numpy), larger ones as jitted JAX kernels; a ratio "
                               "> 1 means brainmodels is faster. Same alpha and held-out R^2 on "
                               "noise-dominated synthetic voxels, where near-ties abound.")
    return "\n".join(rows)


def _snn(records: list[dict]) -> str:
    runs = _newest([r for r in records if r["benchmark"] == "snn"], "model", "n", "side")
    rows = ["| network | side | cold | cold, cache filled | warm (CPU-s) | rate | brian2 / "
            "brainmodels float32: cold / cached / warm | brian2 / brainmodels float64 |",
            "|---|---|---|---|---|---|---|---|"]
    names = {"cuba": "CUBA", "coba": "COBA", "brunel": "Brunel A"}
    for model in ("cuba", "coba", "brunel"):
        for n in sorted({k[1] for k in runs if k[0] == model}):
            f32 = runs.get((model, n, "brainmodels float32"))
            f64 = runs.get((model, n, "brainmodels float64"))
            for side in ("brainmodels float32", "brainmodels float64", "brian2 cython"):
                r = runs.get((model, n, side))
                if r is None:
                    continue
                ratios = ["", ""]
                if side == "brian2 cython":
                    for i, mine in enumerate((f32, f64)):
                        if mine is not None:
                            ratios[i] = (f"{r['cold_wall'] / mine['cold_wall']:.1f}x / "
                                         f"{r['cold_cached_wall'] / mine['cold_cached_wall']:.1f}"
                                         f"x / {r['warm_wall'] / mine['warm_wall']:.1f}x")
                dtype = " (float64)" if side == "brian2 cython" else ""
                stats = f"{r['rate_hz']:.2f} Hz"
                if model == "brunel" and r.get("cv_isi") is not None:
                    stats += f", CV {r['cv_isi']:.2f}, FF {r['fano_factor']:.2f}"
                rows.append(f"| {names[model]} {n:,} LIF, {r['duration_ms'] / 1e3:g} s "
                            f"| {side}{dtype} | {_s(r['cold_wall'])} s "
                            f"| {_s(r['cold_cached_wall'])} s "
                            f"| {_s(r['warm_wall'])} s ({_s(r['warm_cpu'])}) "
                            f"| {stats} | {ratios[0]} | {ratios[1]} |")
    rows += _measured_on(runs, "dt 0.1 ms, p = 0.02 (Brette et al. 2007); every number from "
                               "fresh processes: cold = build the network and run it once with "
                               "nothing cached (JAX compilation or brian2's code generation and "
                               "cython compilation included), cache filled = the same in a "
                               "later process (JAX's persistent cache; brian2's cython cache), "
                               "warm = median of 3 further runs; a ratio > 1 means brainmodels "
                               "is faster. Rates differ between the sides' random draws, not "
                               "between the models (tests/snn compare them with brian2). "
                               "Brunel A: g = 5, eta = 2, epsilon = 0.1, J = 0.1 mV, D = "
                               "1.5 ms, delta synapses (brian2: `v_post += w * "
                               "int(not_refractory_post)`), Poisson drive (brainmodels: one "
                               "count per neuron and step by inversion; brian2: "
                               "`PoissonInput`); CV = mean CV-ISI, FF = mean Fano factor of "
                               "100 ms counts, after 200 ms.")
    return "\n".join(rows)


def _rsa(records: list[dict]) -> str:
    runs = _newest([r for r in records if r["benchmark"] == "rsa"], "conditions", "job", "side")
    rows = ["| conditions | job | rsatoolbox cold / warm (CPU-s) | brainmodels cold / cached / "
            "warm (CPU-s) | ratio cold / warm | agreement |", "|---|---|---|---|---|---|"]
    jobs = ("compare:cosine", "compare:corr", "compare:spearman", "compare:tau-a",
            "compare:corr_cov", "crossnobis", "bootstrap:corr", "bootstrap:tau-a")
    for k in sorted({key[0] for key in runs}):
        for job in jobs:
            ours, peer = runs.get((k, job, "brainmodels")), runs.get((k, job, "rsatoolbox"))
            if ours is None or peer is None:
                continue
            c = ours["config"]
            if job.startswith("compare"):
                what = f"{job.split(':')[1]}, {c['rdms']} x {c['rdms']} RDMs"
                agree = f"max abs diff {ours['max_abs_difference']:.0e}"
            elif job == "crossnobis":
                what = f"crossnobis RDM, {c['runs']} runs x {c['voxels']} voxels"
                agree = f"max abs diff {ours['max_abs_difference']:.0e}"
            else:
                scaled = (f"; rsatoolbox {c['peer_samples']} samples, scaled"
                          if c["peer_samples"] < c["samples"] else "")
                what = (f"stimulus bootstrap, {job.split(':')[1]}, {c['models']} models x "
                        f"{c['subjects']} subjects, {c['samples']:,} samples{scaled}")
                agree = (f"SEs within {ours['max_rel_se_difference']:.0%} (sampling noise "
                         f"~{ours['se_noise']:.0%})")
            rows.append(
                f"| {k} | {what} | {_dur(peer['cold_wall'])} / {_dur(peer['warm_wall'])} "
                f"({_dur(peer['warm_cpu'])}) | {_dur(ours['cold_wall'])} / "
                f"{_dur(ours['cold_cached_wall'])} / {_dur(ours['warm_wall'])} "
                f"({_dur(ours['warm_cpu'])}) | {peer['cold_wall'] / ours['cold_wall']:.1f}x / "
                f"{peer['warm_wall'] / ours['warm_wall']:.1f}x | {agree} |")
    rows += _measured_on(runs, "float64 on both sides; every number from fresh processes: cold "
                               "= the first call (imports excluded; JAX compilation, numba's "
                               "import and kernel load, xarray's first Dataset included), "
                               "cached = the same with JAX's persistent cache filled, warm = "
                               "median of 3 further calls (rsatoolbox's bootstrap: its one "
                               "call); brainmodels' host kernels use a pool of threads, "
                               "rsatoolbox one (CPU seconds in brackets); no noise ceiling on "
                               "either side of the bootstraps; a ratio > 1 means brainmodels "
                               "is faster.")
    return "\n".join(rows)


def _nonlinear_encoders(records: list[dict]) -> str:
    fits = _newest([r for r in records if r.get("job") == "rois"], "model")
    subj = _newest([r for r in records if r.get("job") == "new_subject"], "context")
    models = [m for m in ("ridge", "attention", "factorized", "in-context") if (m,) in fits]
    if not models:
        return ""
    names = {"ridge": "`RidgeEncoder`", "attention": "`AttentionRoutingEncoder`",
             "factorized": "`FactorizedReadout`", "in-context": "`InContextEncoder` (100 context stimuli)"}
    rows = ["| ROI | " + " | ".join(names[m] for m in models) + " |",
            "|---|" + "---|" * len(models)]
    rois = list(fits[(models[0],)]["per_roi"])
    for roi in rois:
        rows.append(f"| {roi} | " + " | ".join(f"{fits[(m,)]['per_roi'][roi]:.2f}"
                                               for m in models) + " |")
    rows.append("| fit, wall (CPU) | " + " | ".join(
        f"{_s(fits[(m,)]['fit_wall'])} s ({_s(fits[(m,)]['fit_cpu'])} CPU-s)"
        for m in models) + " |")
    rows.append("| training throughput | " + " | ".join(
        "closed form" if m == "ridge" else
        f"{fits[(m,)]['throughput']:,.0f} {fits[(m,)]['throughput_unit']} "
        f"({fits[(m,)]['steps']} steps)" for m in models) + " |")
    any_fit = fits[(models[0],)]
    rows += ["", f"Median held-out r / noise ceiling over each ROI's voxels "
                 f"({any_fit['voxels']} responsive voxels, {any_fit['train_stimuli']} training "
                 f"stimuli, 8 mm synthetic data; single-trial held-out betas)."]
    if subj:
        rows += ["", "| context stimuli (new subject) | `InContextEncoder` mean r | ridge "
                     "mean r | difference (paired SE) | in-context retinotopic / category "
                     "| ridge retinotopic / category |", "|---|---|---|---|---|---|"]
        for (k,), r in sorted(subj.items()):
            used = r.get("used_context", k)
            rows.append(
                f"| {k}{f' ({used} used: its largest training context)' if used < k else ''} "
                f"| {r['in_context_mean_r']:.3f} | {r['ridge_mean_r']:.3f} | "
                f"{r['in_context_mean_r'] - r['ridge_mean_r']:+.3f} ({r['paired_se']:.3f}) | "
                f"{r['in_context_retinotopic']:.2f} / {r['in_context_category']:.2f} | "
                f"{r['ridge_retinotopic']:.2f} / {r['ridge_category']:.2f} |")
        r = next(iter(subj.values()))
        rows += ["", f"Meta-trained on {r['meta_voxels']} voxels of subjects 0-2 "
                     f"({r['meta_steps']} steps, {_s(r['meta_train_wall'])} s); "
                     f"r against the noiseless signal of subject 3's {r['voxels']} voxels "
                     f"on 200 stimuli outside the meta-training set."]
    rows += _measured_on(fits, "times include compilation (each model's first fit in the "
                               "process).")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- goals (issue 13)

#: the speed goals, checked against the newest sweep records: (goal, threshold, cases); a
#: case is (label, benchmark, key fields, which ratio: "cold" or "warm")
SMALL, LARGER = "small", "medium and large"


def _cases() -> list[dict]:
    """Every (benchmark, size, job, cold/warm) ratio of the sweeps: brainmodels' speed-up over
    the peer (peer time / ours; float32 against brian2, numpy float32 for Kuramoto)."""
    out = []
    ridge = _newest(load("ridge"), "size", "method", "side")
    for (size, method, side), peer in ridge.items():
        ours = ridge.get((size, method, "brainmodels"))
        if side != "peer" or ours is None:
            continue
        for when in ("cold", "warm"):
            out.append(dict(family="ridge", size=SMALL if size == "small" else LARGER,
                            label=f"ridge {'5-fold' if method == 'kfold' else 'LOO'} "
                                  f"{ours['n']:,} x {ours['p']:,} x {ours['v']:,} {when}",
                            when=when, ratio=peer[f"{when}_wall"] / ours[f"{when}_wall"]))
    rsa = _newest(load("rsa"), "conditions", "job", "side")
    for (k, job, side), peer in rsa.items():
        ours = rsa.get((k, job, "brainmodels"))
        if side != "rsatoolbox" or ours is None:
            continue
        family = "bootstrap" if job.startswith("bootstrap") else "rsa"
        for when in ("cold", "warm"):
            out.append(dict(family=family, size=SMALL if k == 10 else LARGER,
                            label=f"{job.replace('compare:', '').replace(':', ' ')} {k} conditions "
                                  f"{when}",
                            when=when, ratio=peer[f"{when}_wall"] / ours[f"{when}_wall"]))
    snn = _newest(load("snn"), "model", "n", "side")
    names = {"cuba": "CUBA", "coba": "COBA", "brunel": "Brunel A"}
    for (model, n, side), peer in snn.items():
        ours = snn.get((model, n, "brainmodels float32"))
        if side != "brian2 cython" or ours is None:
            continue
        smallest = n == min(k[1] for k in snn if k[0] == model)
        largest = n == max(k[1] for k in snn if k[0] == model)
        for when in ("cold", "warm"):
            out.append(dict(family="snn", model=model, size=SMALL if smallest else LARGER,
                            full=largest, label=f"{names[model]} {n:,} {when}", when=when,
                            ratio=peer[f"{when}_wall"] / ours[f"{when}_wall"]))
    kur = _newest(load("kuramoto"), "size", "side")
    for (size, side), peer in kur.items():
        ours = kur.get((size, "brainmodels float32"))
        if side != "numpy float32" or ours is None:
            continue
        for when in ("cold", "warm"):
            out.append(dict(family="kuramoto", size=SMALL if size == "small" else LARGER,
                            label=f"Kuramoto N = {peer['n']:,} {when}", when=when,
                            ratio=peer[f"{when}_wall"] / ours[f"{when}_wall"]))
    return out


#: goal text -> (minimum speed-up, which cases it covers)
GOALS: list[tuple[str, float, Callable[[dict], bool]]] = [
    ("warm >= 5x every peer at medium and large sizes", 5.0,
     lambda c: c["size"] == LARGER and c["when"] == "warm" and c["family"] in (
         "ridge", "rsa", "snn")),
    ("never slower than the peer at small sizes, cold or warm", 1.0,
     lambda c: c["size"] == SMALL),
    ("cold (new network, new duration) >= 1.5x brian2 cython on CUBA, COBA and Brunel", 1.5,
     lambda c: c["family"] == "snn" and c["when"] == "cold"),
    ("Brunel A, full size, warm >= 5x brian2 cython", 5.0,
     lambda c: c["family"] == "snn" and c.get("model") == "brunel" and c.get("full")
     and c["when"] == "warm"),
    ("Kuramoto >= 5x numpy float32 (warm)", 5.0,
     lambda c: c["family"] == "kuramoto" and c["when"] == "warm"),
    ("bootstrap >= 20x rsatoolbox doing the same work", 20.0,
     lambda c: c["family"] == "bootstrap"),
]


def _why() -> list[str]:
    """What the profiles (``benchmarks/profiles.py``) say about the misses."""
    prof = load("profiles")
    out = []
    gemm = {r["dtype"]: r["gflops"] for r in prof if r.get("topic") == "gemm"}
    ridge = _newest([r for r in prof if r.get("topic") == "ridge" and "product32" in r],
                    "size")
    fits = _newest(load("ridge"), "size", "method", "side")
    parts = []
    for (size,), r in ridge.items():
        for method in ("kfold", "loo"):
            ours, peer = fits.get((size, method, "brainmodels")), fits.get((size, method, "peer"))
            if ours is None or peer is None:
                continue
            parts.append(f"{r['n']:,} x {r['p']:,} x {r['v']:,} "
                         f"{'5-fold' if method == 'kfold' else 'LOO'}: ours "
                         f"{ours['warm_wall'] / r['product32']:.0f} (float32), the peer "
                         f"{peer['warm_wall'] / r['product' + peer['dtype'][-2:]]:.0f} "
                         f"({peer['dtype']})")
    if parts:
        rates = (f" This machine multiplies float32 matrices at {gemm['float32']:.0f} "
                 f"GFLOP/s and float64 at {gemm['float64']:.0f}." if gemm else "")
        out.append("- **Ridge** is matrix products on both sides (a decomposition per fold, "
                   "then products with every voxel per alpha; the peers' algorithms are the "
                   "same). The sweep's warm fits in units of one product X^T Y of the side's "
                   "own dtype, the least work a fit of every voxel does: " + "; ".join(parts)
                   + "." + rates + " 5x needs our count below a fifth of the peer's (times "
                   "the float64/float32 speed ratio for scikit-learn): the per-alpha products "
                   "and per-fold decompositions are already shared, so what is left is the "
                   "count itself.")
    for r in _newest([r for r in prof if r.get("topic") == "rsa"], "conditions",
                     "method").values():
        top = ", ".join(f"{name.split(':')[-1].strip('<>')} {frac:.0%}"
                        for name, frac in r["top"])
        out.append(f"- **RSA {r['method']}, {r['conditions']} conditions** (10 x 10 RDMs, "
                   f"{r['input_mb']:.1f} MB of input): one read of the input takes "
                   f"{_dur(r['read_wall'])}; rsatoolbox takes "
                   f"{_dur(r['peer_wall'])} ({r['peer_wall'] / r['read_wall']:.0f} "
                   f"reads), we take {_dur(r['ours_wall'])} "
                   f"({r['ours_wall'] / r['read_wall']:.0f} reads: {top}). 5x would leave "
                   f"{r['peer_wall'] / 5 / r['read_wall']:.1f} reads for the checks of the "
                   f"input, the norms (centring, for corr) and the products.")
    for r in _newest([r for r in prof if r.get("topic") == "snn"], "network").values():
        ours = r["ours"]
        whole = ours["whole network"]
        b2 = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(r["brian2"].items(),
                                                            key=lambda kv: -kv[1]))
        if "without projections and drive" in ours:  # Brunel: a Poisson drive
            recur = whole - ours["without the recurrent projections"]
            drive = (ours["without the recurrent projections"]
                     - ours["without projections and drive"])
            split = (f"the recurrent delivery (~43 Hz x 10,000 neurons x 1,000 targets) "
                     f"{recur:.2f} s, the Poisson drive with the firing it causes (threshold, "
                     f"reset, recording) {drive:.2f} s and silent neurons "
                     f"{ours['without projections and drive']:.2f} s (removing one part at a "
                     "time)")
        elif "without spike recording" in ours:  # CUBA, COBA: self-sustained, no drive
            rec = whole - ours["without spike recording"]
            rest = whole - max(rec, 0.0) - ours["loop floor"]
            rec_text = (f"recording the spikes {_dur(rec)}" if rec > 0.05 * whole else
                        "recording the spikes nothing measurable (under 5 %)")
            split = (f"{rec_text}, the loop itself (10,000 steps of a 40-neuron copy without "
                     f"synapses) {_dur(ours['loop floor'])}, and the rest, {_dur(rest)}, the "
                     "neurons' update and the delivery together (removing the synapses to "
                     "split them would make these networks fire far more)")
        else:  # records from before the CUBA/COBA split: nothing to report
            continue
        out.append(f"- **{r['network']}**: our float32 run takes {_dur(whole)}, of which "
                   f"{split}. brian2 cython takes "
                   f"{_dur(r['brian2_total'])} by its profiler: {b2}. Delivery is scattered "
                   "adds to random targets on both sides, memory-latency bound; 5x would need "
                   f"our whole run below {_dur(r['brian2_total'] / 5)}.")
    for r in [r for r in prof if r.get("topic") == "kuramoto"][-1:]:
        out.append(f"- **Kuramoto N = {r['n']:,}** ({r['steps']:,} RK4 steps, float32): our run "
                   f"takes {r['ours']:.2f} s, of which sines and cosines alone (four of each "
                   f"per oscillator and step) {r['ours_trig']:.2f} s; numpy takes "
                   f"{r['numpy']:.2f} s ({r['numpy_trig']:.2f} s of sines and cosines). "
                   "At 10^4 oscillators a step is ~10 us of work, which XLA splits over both "
                   "cores at a loss (pinned to one core the run takes ~2/3 of the time).")
    for r in [r for r in prof if r.get("topic") == "first_touch"][-1:]:
        out.append(f"- **Small RDMs, cold**: compare_rdms on 10-condition RDMs takes "
                   f"{r['cold'] * 1e6:.0f} us as a process's first call and "
                   f"{r['warm'] * 1e6:.0f} us after; no compilation is involved: the "
                   f"difference is each numpy operation's first use in a process (a "
                   f"reduction: {r['first_op'] * 1e6:.0f} us the first time, "
                   f"{r['second_op'] * 1e6:.0f} us the second); rsatoolbox's first call "
                   "pays the same kind of cost (its cold and warm columns above). Warm, both "
                   "sides are within run-to-run noise at this size.")
    return out


def _ratio(x: float) -> str:
    """A speed-up: two decimals near 1 (0.97x is a miss, and must not print as 1.0x)."""
    return f"{x:.2f}x" if x < 1.995 else f"{x:.1f}x"


def _goals(_records: list[dict]) -> str:
    cases = _cases()
    if not cases:
        return ""
    rows = ["| goal | met | missed (speed-up) |", "|---|---|---|"]
    for goal, need, covers in GOALS:
        mine = [c for c in cases if covers(c)]
        if not mine:
            continue
        missed = [c for c in mine if c["ratio"] < need]
        met = len(mine) - len(missed)
        rows.append(f"| {goal} | {met} of {len(mine)} | "
                    + ("none" if not missed else
                       "; ".join(f"{c['label']} {_ratio(c['ratio'])}" for c in missed)) + " |")
    why = _why()
    if why:
        rows += ["", "Why the misses (`python benchmarks/profiles.py`, generated from "
                     "`benchmarks/records/profiles.jsonl`):", "", *why]
    return "\n".join(rows)


#: benchmark name -> renderer of its README block
RENDERERS: dict[str, Callable[[list[dict]], str]] = {"banded_ridge": _banded_ridge,
                                                     "goals": _goals,
                                                     "kuramoto": _kuramoto, "ridge": _ridge,
                                                     "nonlinear_encoders": _nonlinear_encoders,
                                                     "rsa": _rsa, "snn": _snn}


def render(readme: str) -> str:
    for name, fn in RENDERERS.items():
        # the body between the markers may be empty (a block not yet generated)
        pattern = re.compile(rf"(<!-- records:{name} -->\n)(?:.*?\n)?(<!-- /records:{name} -->)",
                             re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- records:{name} --> block")
        body = fn(load(name))
        readme = pattern.sub(lambda m, b=body: m.group(1) + b.rstrip("\n") + "\n" + m.group(2),
                             readme)
    return readme


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md benchmark tables differ from benchmarks/records: run "
                  "python benchmarks/_records.py", file=sys.stderr)
            return 1
        return 0
    from brainmodels._io import write_text_atomic

    write_text_atomic(README, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
