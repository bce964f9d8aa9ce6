"""A fair test of Lyapunov Noise Pruning: LNP against random and activity-based pruning.

    python scripts/snn_lnp.py --state runs/lnp --seeds 10        # stops and resumes
    python scripts/snn_lnp.py --state runs/lnp --table            # the table from saved results
    python scripts/snn_lnp.py --quick --state /tmp/lnp            # a smoke run (seconds)

For every task, training regime and seed (one *unit*), a dense heterogeneous RSNN of
``--hidden`` neurons (gamma-distributed membrane time constants) is drawn, and four networks are
trained and tested on the same data:

* **LNP** (:func:`brainmodels.snn.lyapunov_noise_prune`): pruned to ``--keep`` neurons before
  training, without the task;
* **random**: the dense network pruned at random to LNP's neuron and synapse counts;
* **activity**: the dense network trained first, then its least active neurons and weakest
  synapses removed to the same counts, and fine-tuned (the usual route LNP claims to beat);
* **dense**: the unpruned network (a reference).

LNP's stabilisation scales its recurrent weights; the random and activity-pruned networks are
given LNP's spectral radius (issue 21: otherwise the comparison is of weight scale, not of
which neurons and synapses were kept).

Tasks that need memory: pixel-by-pixel digits (64 steps), the copy task (recall 5 symbols after
a delay of 10), and Lorenz prediction from the ``x`` coordinate alone. Regimes: ``readout``
(only the readout is fitted, in closed form: ridge regression, alpha per output by 5-fold CV,
from the network's spikes filtered by the readout's leak, on the steps the task scores; the
recurrent network is left as built, so its structure must carry the task: the reservoir
setting) and ``full`` (backprop through time into every weight, Adam).

Each finished unit appends one line to ``STATE/results.jsonl`` (finished units are skipped when
the command is run again); ``--table`` prints mean +- SE over seeds of the test score, spike
counts and lambda_max per (task, regime, method), and writes ``STATE/summary.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

TASK_NAMES = ("digits", "copy", "lorenz")
REGIMES = ("readout", "full")
METHODS = ("LNP", "random", "activity", "dense")


@dataclasses.dataclass(frozen=True)
class LNPConfig:
    hidden: int = 512
    keep: int = 220
    synapse_fraction: float = 0.3
    tau_ms: float = 10.0
    tau_cv: float = 0.5
    epochs: int = 10
    finetune_epochs: int = 3
    lr_full: float = 5e-3
    lr_readout: float = 2e-2
    batch_size: int = 64
    n_train: int = 1024
    tasks: tuple = TASK_NAMES
    regimes: tuple = REGIMES
    seed: int = 0
    seeds: int = 10


QUICK = dict(hidden=48, keep=20, epochs=1, finetune_epochs=1, n_train=128, seeds=1)


def _task(name: str, cfg: LNPConfig, seed: int):
    from brainmodels.datasets.tasks import copy_task, lorenz_task, sequential_digits

    if name == "digits":
        task = sequential_digits(order="pixel", repeat=1, seed=seed)
        return task, dict(loss="sequence_ce", n_out=10, metric="accuracy")
    if name == "copy":
        task = copy_task(n_train=cfg.n_train, n_test=256, length=5, delay=10, n_symbols=8,
                         seed=seed)
        return task, dict(loss="step_ce", n_out=9, metric="accuracy")
    task = lorenz_task(n_train=cfg.n_train, n_test=256, seed=seed)
    return task, dict(loss="step_mse", n_out=1, metric="mse")


def run_unit(cfg: LNPConfig, task_name: str, regime: str, seed: int) -> dict:
    """One (task, regime, seed): the four methods' test scores, spikes and lambda_max."""
    import jax
    import numpy as np
    from flax import nnx

    from brainmodels.snn import (
        RSNN,
        TrainConfig,
        activity_prune,
        evaluate,
        lyapunov_noise_prune,
        noise_drive,
        rsnn_lyapunov_spectrum,
        select_neurons,
        spectral_radius,
        train_classifier,
        with_spectral_radius,
    )
    from brainmodels.snn.rsnn import Mask

    task, spec = _task(task_name, cfg, seed)
    loss, metric = spec["loss"], spec["metric"]

    def dense():
        return RSNN(task.n_inputs, cfg.hidden, spec["n_out"], tau_mem_ms=cfg.tau_ms,
                    tau_out_ms=cfg.tau_ms, tau_distribution="gamma", tau_cv=cfg.tau_cv,
                    in_scale=2.0, rec_scale=1.0, rngs=nnx.Rngs(seed))

    def ridge_score(net):
        return _ridge_readout_score(net, task, loss, metric, spec["n_out"])

    def train(net, epochs):
        tc = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, loss=loss,
                         learning_rate=cfg.lr_readout if regime == "readout" else cfg.lr_full,
                         trainable="w_out|b_out" if regime == "readout" else None, seed=seed)
        train_classifier(net, task.x_train, task.y_train, config=tc,
                         mask_train=task.mask_train)
        return net

    def lam(net):
        drive = noise_drive(600, net.n_hidden, key=jax.random.key(seed + 7))
        return float(rsnn_lyapunov_spectrum(net, drive,
                                            n_exponents=min(8, net.n_hidden))[0])

    def row(method, net, lam_init):
        ev = evaluate(net, task.x_test, task.y_test, task.mask_test, loss=loss)
        spikes = float(np.sum(ev["rates"]) * task.x_test.shape[1])  # per sample
        score = ridge_score(net) if regime == "readout" else float(ev[metric])
        return {"method": method, "neurons": int(net.n_hidden),
                "synapses": int(np.count_nonzero(np.asarray(net.effective_w_rec()))),
                metric: score, "spikes_per_sample": spikes,
                "lambda_max_init": lam_init, "lambda_max_trained": lam(net)}

    if regime == "readout":  # the readout is fitted in closed form when the row is scored
        train = lambda net, epochs: net  # noqa: E731

    t0 = time.perf_counter()
    lnp = lyapunov_noise_prune(dense(), key=jax.random.key(seed),
                               neuron_fraction=cfg.keep / cfg.hidden,
                               synapse_fraction=cfg.synapse_fraction)
    t_lnp = time.perf_counter() - t0
    n_keep, s_keep = lnp.n_neurons[1], lnp.n_synapses[1]
    rho = spectral_radius(lnp.model)
    lam_lnp = lam(lnp.model)  # before training: the network LNP hands over
    rows = [row("LNP", train(lnp.model, cfg.epochs), lam_lnp)]

    rng = np.random.default_rng([seed, 11])
    rnd = select_neurons(dense(), np.sort(rng.choice(cfg.hidden, n_keep, replace=False)))
    existing = np.flatnonzero(np.asarray(rnd.rec_mask[...]).ravel())
    mask = np.zeros(rnd.n_hidden**2, np.float32)
    mask[rng.choice(existing, min(s_keep, existing.size), replace=False)] = 1.0
    rnd.rec_mask = Mask(jax.numpy.asarray(mask.reshape(rnd.n_hidden, -1)))
    rnd = with_spectral_radius(rnd, rho)
    lam_rnd = lam(rnd)
    rows.append(row("random", train(rnd, cfg.epochs), lam_rnd))

    net = dense()
    lam_dense = lam(net)
    train(net, cfg.epochs)
    act = activity_prune(net, task.x_train, n_neurons=n_keep, n_synapses=s_keep)
    act = with_spectral_radius(act, rho)
    rows.append(row("activity", train(act, cfg.finetune_epochs), float("nan")))
    rows.append(row("dense", net, lam_dense))
    return {"task": task_name, "regime": regime, "seed": seed, "metric": metric,
            "lnp": lnp.summary(), "lnp_seconds": t_lnp, "spectral_radius": rho, "rows": rows,
            "config": dataclasses.asdict(cfg)}


def _filtered_spikes(net, x):
    """Spikes filtered by the readout's leak, ``F[t] = beta F[t-1] + S[t]`` (what the readout
    ``Y = F W_out + ...`` is linear in), and the bias's own filter ``c[t]``, float32."""
    import numpy as np

    from brainmodels.snn import record

    spikes = record(net, x)["spikes"].values.astype(np.float32)
    beta = float(np.exp(-net.dt_ms / net.tau_out_ms))
    out = np.empty_like(spikes)
    acc = np.zeros(spikes[:, 0].shape, np.float32)
    for t in range(spikes.shape[1]):
        acc = beta * acc + spikes[:, t]
        out[:, t] = acc
    c = ((1 - beta ** np.arange(1, spikes.shape[1] + 1)) / (1 - beta)).astype(np.float32)
    return out, c


def _ridge_readout_score(net, task, loss, metric, n_out) -> float:
    """Test score of the best linear readout of the network's filtered spikes: ridge with one
    alpha per output by 5-fold CV, on the scored steps (the time mean for a sequence label)."""
    import numpy as np

    from brainmodels.encoders import RidgeEncoder

    def design(x, y, mask):
        f, c = _filtered_spikes(net, x)
        feats = np.concatenate([f, np.broadcast_to(c[None, :, None], (*f.shape[:2], 1))], -1)
        if loss == "sequence_ce":
            return feats.mean(1), np.asarray(y)
        m = np.ones(f.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        return feats[m], np.asarray(y)[m]

    a, ya = design(task.x_train, task.y_train, task.mask_train)
    b, yb = design(task.x_test, task.y_test, task.mask_test)
    target = np.eye(n_out, dtype=np.float32)[ya] if metric == "accuracy" else ya[:, None]
    enc = RidgeEncoder(alphas=np.logspace(-3, 5, 17), cv=5, drop_constant=True)
    enc.fit(a, target.astype(np.float32))
    pred = np.asarray(enc.predict(b))
    if metric == "accuracy":
        return float(np.mean(np.argmax(pred, 1) == yb))
    return float(np.mean((pred[:, 0] - yb) ** 2))


def _done(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    return {(r["task"], r["regime"], r["seed"]) for r in map(json.loads,
                                                             path.read_text().splitlines())}


def summarise(results: list[dict]) -> list[dict]:
    """Mean and standard error over seeds for each (task, regime, method)."""
    import numpy as np

    out = []
    keys = sorted({(r["task"], r["regime"]) for r in results},
                  key=lambda k: (TASK_NAMES.index(k[0]), REGIMES.index(k[1])))
    for task, regime in keys:
        units = [r for r in results if r["task"] == task and r["regime"] == regime]
        metric = units[0]["metric"]
        for method in METHODS:
            rows = [row for u in units for row in u["rows"] if row["method"] == method]
            if not rows:
                continue
            entry = {"task": task, "regime": regime, "method": method, "metric": metric,
                     "seeds": len(rows), "neurons": rows[0]["neurons"],
                     "synapses": float(np.mean([r["synapses"] for r in rows]))}
            for k in (metric, "spikes_per_sample", "lambda_max_init", "lambda_max_trained"):
                v = np.array([r[k] for r in rows], float)
                entry[k] = float(np.mean(v))
                entry[f"{k}_se"] = float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 \
                    else float("nan")
            out.append(entry)
    return out


def _lam(x: float) -> str:
    """lambda_max, or "-" where there is none (activity pruning starts from the trained
    dense network: it has no network before training)."""
    import math

    return "-" if math.isnan(x) else f"{x:.3f}"


def format_summary(summary: list[dict]) -> str:
    lines = ["| task | regime | method | neurons | synapses | test score (mean +- SE) | "
             "spikes / sample | lambda_max init -> trained (1/ms) | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        m = e["metric"]
        lines.append(
            f"| {e['task']} | {e['regime']} | {e['method']} | {e['neurons']} | "
            f"{e['synapses']:.0f} | {m} {e[m]:.3f} +- {e[m + '_se']:.3f} | "
            f"{e['spikes_per_sample']:.0f} | {_lam(e['lambda_max_init'])} -> "
            f"{_lam(e['lambda_max_trained'])} | {e['seeds']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    d = LNPConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--state", required=True, metavar="DIR",
                   help="results.jsonl (one line per finished unit) and summary.json")
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--seed", type=int, default=d.seed, help="first seed")
    p.add_argument("--tasks", default=",".join(d.tasks), help=f"of {','.join(TASK_NAMES)}")
    p.add_argument("--regimes", default=",".join(d.regimes), help=f"of {','.join(REGIMES)}")
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--keep", type=int, default=d.keep, help="neurons LNP keeps")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--quick", action="store_true", help="a tiny smoke run")
    p.add_argument("--table", action="store_true", help="only summarise the saved results")
    args = p.parse_args(argv)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    regimes = tuple(r for r in args.regimes.split(",") if r)
    bad = [t for t in tasks if t not in TASK_NAMES] + [r for r in regimes if r not in REGIMES]
    if bad:
        p.error(f"unknown task or regime {bad}; tasks {TASK_NAMES}, regimes {REGIMES}")
    fields = dict(hidden=args.hidden, keep=args.keep, epochs=args.epochs, tasks=tasks,
                  regimes=regimes, seed=args.seed, seeds=args.seeds)
    cfg = LNPConfig(**{**fields, **(QUICK if args.quick else {})})
    if not 0 < cfg.keep < cfg.hidden:
        p.error(f"--keep must be in (0, --hidden), got {cfg.keep}")
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    results_path = state / "results.jsonl"
    from brainmodels._io import write_text_atomic

    if not args.table:
        done = _done(results_path)
        for seed in range(cfg.seed, cfg.seed + cfg.seeds):
            for task in cfg.tasks:
                for regime in cfg.regimes:
                    if (task, regime, seed) in done:
                        continue
                    t0 = time.perf_counter()
                    unit = run_unit(cfg, task, regime, seed)
                    old = results_path.read_text() if results_path.exists() else ""
                    write_text_atomic(results_path, old + json.dumps(unit) + "\n")
                    scores = ", ".join(f"{r['method']} {r[unit['metric']]:.3f}"
                                       for r in unit["rows"])
                    print(f"{task:7s} {regime:8s} seed {seed}: {scores} "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if not results_path.exists():
        print(f"no results in {results_path} yet")
        return 0
    results = [json.loads(line) for line in results_path.read_text().splitlines()]
    summary = summarise(results)
    write_text_atomic(state / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
