"""The README's fidelity table: each tested claim of a paper, its number, ours, and a verdict.

    python scripts/fidelity.py            # rewrite the README block from results/
    python scripts/fidelity.py --check    # exit 1 if the block differs (run by the tests)
    python scripts/fidelity.py --collect  # copy finished runs from runs/ into results/

The numbers come only from the result files under ``results/`` (one JSON line per finished
seed or unit, written by ``scripts/akorn_objects.py --state`` and ``scripts/snn_lnp.py
--state``; ``--collect`` copies them from their run folders). Verdicts compare paired
per-seed differences (same seed, same data, both methods):

* fewer than 3 seeds: *inconclusive* (too few seeds);
* the 95 % t interval of the mean difference (n - 1 degrees of freedom: +-4.30 SE for 3
  seeds, +-2.26 SE for 10) lies entirely on the paper's side of zero: *reproduced* (the size
  is stated beside the paper's);
* entirely on the other side: *not reproduced*;
* otherwise *inconclusive* (the interval contains zero).

A flat 2 SE would be a 82 % interval at 3 seeds, too lenient for a verdict.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from brainmodels._io import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
README = ROOT / "README.md"

#: (result file, run folder it is collected from)
SOURCES = {
    "akorn_conv_tetrominoes.jsonl": "runs/akorn_fair_conv_tet/results.jsonl",
    "akorn_attn_tetrominoes.jsonl": "runs/akorn_fair_attn_tet/results.jsonl",
    "lnp.jsonl": "runs/lnp/results.jsonl",
}

#: AKOrN claims: (file, model label, paper's model FG-ARI, paper's baseline FG-ARI)
AKORN_CLAIMS = [
    ("akorn_conv_tetrominoes.jsonl", "AKOrN (conv J) vs ItrConv", 76.4, 59.0),
    ("akorn_attn_tetrominoes.jsonl", "AKOrN (attention J) vs ItrSA", 88.6, 85.8),
]


def _lines(name: str) -> list[dict]:
    path = RESULTS / name
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def verdict(diffs: np.ndarray, direction: int = 1) -> tuple[str, float, float]:
    """(verdict, mean difference, SE) of paired differences; ``direction`` +1 when the paper
    claims the first method is higher (scores) or -1 when lower (errors)."""
    n = diffs.size
    if n == 0:
        return "not run yet", float("nan"), float("nan")
    mean = float(diffs.mean())
    se = float(diffs.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if n < 3:
        return f"inconclusive ({n} seed{'s' if n > 1 else ''}: too few)", mean, se
    from scipy import stats

    crit = float(stats.t.ppf(0.975, n - 1))
    z = direction * mean / se if se > 0 else np.inf * np.sign(direction * mean)
    if z > crit:
        return "reproduced", mean, se
    if z < -crit:
        return "not reproduced (reversed)", mean, se
    return f"inconclusive (the 95 % interval, +-{crit:.2f} SE, contains zero)", mean, se


def _pm(values: np.ndarray, scale: float = 1.0, sign: bool = False) -> str:
    if values.size == 0:
        return "-"
    if values.size == 1:  # no spread from one seed
        return f"{scale * values[0]:{'+' if sign else ''}.1f}"
    se = values.std(ddof=1) / np.sqrt(values.size)
    return f"{scale * values.mean():{'+' if sign else ''}.1f} +- {scale * se:.1f}"


def _akorn_rows() -> list[str]:
    rows = []
    for name, label, paper_model, paper_base in AKORN_CLAIMS:
        recs = _lines(name)
        # the authors' evaluation: agglomerative clustering at each image's object count
        model = np.array([r["scores"]["akorn (agglomerative)"] for r in recs], float)
        base = np.array([r["scores"]["baseline (agglomerative)"] for r in recs], float)
        # no model at all: each patch's mean colour, up-tiled and clustered the same way
        colour = np.array([r["scores"]["patch colour (agglomerative)"] for r in recs], float)
        word, mean, se = verdict(model - base)
        c = recs[0]["config"] if recs else {}
        setting = (f"Tetrominoes-like {c.get('image_size')} px, {c.get('channels')} ch, "
                   f"{c.get('steps')} steps x {c.get('batch')}, T {c.get('T')}, EMA, "
                   f"CPU" if recs else "`akorn_objects.py --config fair`")
        seeds = f"{model.size} seed{'s' if model.size > 1 else ''}"
        ours = f"{_pm(model, 100)} vs {_pm(base, 100)} ({seeds})" if recs else "-"
        diff = (f"; difference {_pm(model - base, 100, sign=True)}; patch colour (no model) "
                f"{_pm(colour, 100)}" if recs else "")
        if word.startswith(("reproduced", "not reproduced")):  # what was and was not
            below = 100 * model.mean() < paper_model and 100 * base.mean() < paper_base
            word += (f": the ordering; margin {100 * mean:+.1f} against the paper's "
                     f"{paper_model - paper_base:+.1f}"
                     + (", both models below the paper's values" if below else ""))
        rows.append(f"| {label}: FG-ARI (%) | {paper_model} vs {paper_base} | {ours}{diff} | "
                    f"{setting} | {word} |")
    return rows


def _lnp_rows() -> list[str]:
    units = _lines("lnp.jsonl")
    rows = []
    combos = sorted({(u["task"], u["regime"]) for u in units})
    if not combos:
        return ["| LNP (before training) vs activity-based pruning of a trained dense network: "
                "test score | LNP higher (CIFAR-10, time series; no public code) | - | "
                "`snn_lnp.py`: 512 -> 220 neurons, pixel digits, copy, Lorenz; readout-only "
                "and full training | not run yet |"]
    for task, regime in combos:
        sel = [u for u in units if u["task"] == task and u["regime"] == regime]
        metric = sel[0]["metric"]
        direction = -1 if metric == "mse" else 1
        score = {m: np.array([next(r[metric] for r in u["rows"] if r["method"] == m)
                              for u in sel], float) for m in ("LNP", "random", "activity")}
        for other in ("activity", "random"):
            word, mean, se = verdict(score["LNP"] - score[other], direction)
            rows.append(
                f"| LNP vs {other} pruning, {task} ({regime} training): test {metric} | LNP "
                f"{'lower' if direction < 0 else 'higher'} | {score['LNP'].mean():.3f} vs "
                f"{score[other].mean():.3f} ({len(sel)} seeds); difference {mean:+.3f} +- "
                f"{se:.3f} | {sel[0]['rows'][0]['neurons']} neurons, controls at LNP's "
                f"spectral radius | {word} |")
    return rows


def render() -> str:
    head = ["| claim | paper | ours (mean +- SE) | setting | verdict |",
            "|---|---|---|---|---|"]
    return "\n".join(head + _akorn_rows() + _lnp_rows())


def render_lnp() -> str:
    """Every method's test score, spikes and lambda_max per task and regime (mean +- SE)."""
    import importlib.util

    units = _lines("lnp.jsonl")
    if not units:
        return "(no LNP results yet)"
    spec = importlib.util.spec_from_file_location("_snn_lnp", ROOT / "scripts" / "snn_lnp.py")
    lnp = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = lnp  # its dataclass looks its module up there
    spec.loader.exec_module(lnp)
    c = units[0]["config"]
    return (lnp.format_summary(lnp.summarise(units)) + "\n\n"
            f"Dense HRSNN of {c['hidden']} neurons (gamma membrane time constants, mean "
            f"{c['tau_ms']} ms, CV {c['tau_cv']}) pruned to {c['keep']}; full training: "
            f"{c['epochs']} epochs of Adam (activity pruning: + {c['finetune_epochs']} "
            "fine-tuning epochs); readout-only: ridge readout, alpha by 5-fold CV. Test "
            "score: accuracy (digits, copy recall steps) or MSE of standardised x (Lorenz; "
            "the memoryless bar is 0.30). lambda_max of the smoothed dynamics under white "
            "noise, per ms, of the network each method hands to training (activity pruning "
            "has none: it prunes the trained dense network) and after training. Random and "
            "activity pruning keep LNP's neuron and synapse counts and are rescaled to its "
            "spectral radius.")


BLOCKS = {"fidelity": render, "lnp": render_lnp}


def write(readme: str) -> str:
    for name, fn in BLOCKS.items():
        pattern = re.compile(rf"(<!-- results:{name} -->\n)(?:.*?\n)?(<!-- /results:{name} -->)",
                             re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- results:{name} --> block")
        body = fn()
        readme = pattern.sub(lambda m, b=body: m.group(1) + b + "\n" + m.group(2), readme)
    return readme


def collect() -> None:
    RESULTS.mkdir(exist_ok=True)
    for name, src in SOURCES.items():
        path = ROOT / src
        if path.exists():  # a reader never sees half a file
            write_text_atomic(RESULTS / name, path.read_text())
            print(f"{src} -> results/{name}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--collect", action="store_true")
    args = parser.parse_args(argv)
    if args.collect:
        collect()
    text = README.read_text()
    new = write(text)
    if args.check:
        if new != text:
            print("README.md fidelity table differs from results/: run python "
                  "scripts/fidelity.py", file=sys.stderr)
            return 1
        return 0
    write_text_atomic(README, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
