"""Lyapunov Noise Pruning experiment: task-agnostic pruning vs activity-based pruning.

    python scripts/snn_lnp.py --out runs/lnp --hidden 128 --epochs 15

1. A dense heterogeneous RSNN (gamma-distributed membrane time constants) is built at random.
2. **LNP** (:func:`brainmodels.snn.lyapunov_noise_prune`) prunes it *before training*, without
   the task: neurons by noise sensitivity, synapses by Lyapunov-guided spectral sparsification;
   then the sparse network is trained.
3. **Activity-based pruning** (the usual route): the dense network is trained, its least active
   neurons and weakest synapses are removed to the same size as LNP's, and it is evaluated
   before and after fine-tuning.
4. **Random pruning** to the same size before training is a control.

Writes ``report.json`` and ``report.txt`` (a table: neurons, synapses, largest Lyapunov
exponent, test accuracy) to ``--out``, atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time


@dataclasses.dataclass(frozen=True)
class LNPConfig:
    out: str = "runs/snn_lnp"
    hidden: int = 128
    epochs: int = 15
    finetune_epochs: int = 5
    neuron_fraction: float = 0.5
    synapse_fraction: float = 0.3
    tau_ms: float = 10.0
    tau_cv: float = 0.5
    learning_rate: float = 5e-3
    repeat: int = 2
    order: str = "row"
    seed: int = 0
    seeds: int = 1
    match_radius: bool = True


_HELP = {
    "hidden": "neurons of the dense random network",
    "epochs": "training epochs of every network",
    "finetune_epochs": "extra epochs after activity-based pruning",
    "neuron_fraction": "fraction of neurons kept",
    "synapse_fraction": "fraction of the kept neurons' synapses kept by LNP (the others match it)",
    "tau_ms": "mean membrane time constant (gamma-distributed)",
    "tau_cv": "coefficient of variation of the time constants",
    "learning_rate": "Adam step size",
    "repeat": "steps per digit row (or pixel)",
    "order": "row (8 steps x 8 pixels) or pixel (64 steps x 1 pixel: needs memory)",
    "seed": "first seed",
    "seeds": "number of seeds (seed, seed + 1, ...); the table shows mean and sd",
    "match_radius": "scale the random and activity-pruned controls to LNP's spectral radius "
                    "(--no-match-radius: as before)",
}


def parse_args(argv=None) -> LNPConfig:
    d = LNPConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=d.out, metavar="DIR", help="output folder")
    for f in dataclasses.fields(LNPConfig):
        if f.name == "out":
            continue
        if isinstance(f.default, bool):  # --match-radius / --no-match-radius
            p.add_argument("--" + f.name.replace("_", "-"), default=f.default, dest=f.name,
                           action=argparse.BooleanOptionalAction, help=_HELP.get(f.name))
        else:
            p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                           default=f.default, dest=f.name, help=_HELP.get(f.name))
    return LNPConfig(**vars(p.parse_args(argv)))


def _train(net, task, epochs, cfg):
    from brainmodels.snn import TrainConfig, train_classifier

    tc = TrainConfig(epochs=epochs, batch_size=64, learning_rate=cfg.learning_rate,
                     seed=cfg.seed)
    return train_classifier(net, task.x_train, task.y_train, config=tc, x_val=task.x_test,
                            y_val=task.y_test).final["val_accuracy"]


def _random_prune(net, n_neurons, n_synapses, seed):
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from brainmodels.snn import select_neurons
    from brainmodels.snn.rsnn import Mask

    rng = np.random.default_rng(seed)
    small = select_neurons(net, np.sort(rng.choice(net.n_hidden, n_neurons, replace=False)))
    existing = np.flatnonzero(np.asarray(small.rec_mask[...]).ravel())
    mask = np.zeros(small.n_hidden**2)
    mask[rng.choice(existing, n_synapses, replace=False)] = 1.0
    small.rec_mask = Mask(jnp.asarray(mask.reshape(small.n_hidden, -1), jnp.float32))
    small.w_rec = nnx.Param(small.w_rec[...])
    return small


def run_seed(cfg: LNPConfig, seed: int) -> dict:
    """One seed of the comparison: a dict with the LNP summary and one row per method."""
    import jax
    import numpy as np
    from flax import nnx

    from brainmodels.datasets.tasks import sequential_digits
    from brainmodels.snn import (
        RSNN,
        activity_prune,
        evaluate,
        lyapunov_noise_prune,
        noise_drive,
        rsnn_lyapunov_spectrum,
        spectral_radius,
        with_spectral_radius,
    )

    task = sequential_digits(order=cfg.order, repeat=cfg.repeat, seed=seed)

    def dense():
        return RSNN(task.n_inputs, cfg.hidden, 10, tau_mem_ms=cfg.tau_ms, tau_out_ms=cfg.tau_ms,
                    tau_distribution="gamma", tau_cv=cfg.tau_cv, in_scale=2.0, rec_scale=1.0,
                    rngs=nnx.Rngs(seed))

    def lam(net):
        drive = noise_drive(600, net.n_hidden, key=jax.random.key(seed + 7))
        return float(rsnn_lyapunov_spectrum(net, drive, n_exponents=min(16, net.n_hidden))[0])

    def row(method, net, acc, lam_init=float("nan")):
        return {"method": method, "neurons": net.n_hidden,
                "synapses": int(np.count_nonzero(np.asarray(net.effective_w_rec()))),
                "lambda_max_init": lam_init, "lambda_max_trained": lam(net),
                "test_accuracy": float(acc)}

    t0 = time.perf_counter()
    lnp = lyapunov_noise_prune(dense(), key=jax.random.key(seed),
                               neuron_fraction=cfg.neuron_fraction,
                               synapse_fraction=cfg.synapse_fraction)
    t_lnp = time.perf_counter() - t0
    print(f"seed {seed}: LNP in {t_lnp:.1f} s: {lnp.summary()}", flush=True)
    n_keep, s_keep = lnp.n_neurons[1], lnp.n_synapses[1]
    lam0 = lam(lnp.model)
    rows = [row("LNP (before training)", lnp.model, _train(lnp.model, task, cfg.epochs, cfg),
                lam0)]
    net = dense()
    lam0 = lam(net)
    rows.append(row("dense (trained)", net, _train(net, task, cfg.epochs, cfg), lam0))
    act = activity_prune(net, task.x_train, n_neurons=n_keep, n_synapses=s_keep)
    rows.append(row("activity-pruned (no fine-tune)", act,
                    evaluate(act, task.x_test, task.y_test)["accuracy"]))
    # LNP's stabilisation scales its recurrent weights down; the controls get the same
    # spectral radius (issue 21: unscaled controls compare the scale, not the pruning)
    rho = spectral_radius(lnp.model)
    matched = " (LNP's spectral radius)" if cfg.match_radius else ""
    if cfg.match_radius:
        act = with_spectral_radius(act, rho)
    rows.append(row(f"activity-pruned (+{cfg.finetune_epochs} ep fine-tune){matched}", act,
                    _train(act, task, cfg.finetune_epochs, cfg)))
    rnd = _random_prune(dense(), n_keep, s_keep, seed)
    if cfg.match_radius:
        rnd = with_spectral_radius(rnd, rho)
    lam0 = lam(rnd)
    rows.append(row(f"random prune (before training){matched}", rnd,
                    _train(rnd, task, cfg.epochs, cfg), lam0))
    return {"seed": seed, "lnp": lnp.summary(), "lnp_seconds": t_lnp, "rows": rows}


def summarise(runs: list[dict]) -> list[dict]:
    """Mean (and standard deviation over seeds) of each method's numbers."""
    import numpy as np

    out = []
    for i, first in enumerate(runs[0]["rows"]):
        vals = {k: np.array([r["rows"][i][k] for r in runs], float)
                for k in ("neurons", "synapses", "lambda_max_init", "lambda_max_trained",
                          "test_accuracy")}
        acc = vals["test_accuracy"]
        out.append({"method": first["method"], "neurons": int(vals["neurons"].mean()),
                    "synapses": int(round(vals["synapses"].mean())),
                    "lambda_max_init": float(vals["lambda_max_init"].mean()),
                    "lambda_max_trained": float(vals["lambda_max_trained"].mean()),
                    "test_accuracy": f"{acc.mean():.3f} +- {acc.std(ddof=1) if acc.size > 1 else 0:.3f}"})
    return out


def main(argv=None) -> int:
    cfg = parse_args(argv)
    from brainmodels._io import output_dir, write_text_atomic
    from brainmodels.cli._common import format_table

    runs = [run_seed(cfg, cfg.seed + k) for k in range(cfg.seeds)]
    lnp = [r["lnp"] for r in runs]
    table = format_table(summarise(runs))
    head = (f"sequential digits ({cfg.order} order, repeat {cfg.repeat}); dense HRSNN of {cfg.hidden} "
            f"neurons; {cfg.epochs} epochs; {cfg.seeds} seed(s) (mean, accuracy +- sd); "
            "lambda_max in 1/ms (smoothed dynamics, white-noise drive)\nLNP lambda_max "
            + ", ".join(f"{d['lambda_max_before']:.3f} -> {d['lambda_max_after']:.3f} "
                        f"(rec. scale {d['rec_scale']:.2f})" for d in lnp))
    print(head + "\n" + table)
    argv = sys.argv[1:] if argv is None else list(argv)
    with output_dir(cfg.out, command=["python", "scripts/snn_lnp.py", *argv]) as tx:
        write_text_atomic(tx.path / "report.txt", head + "\n" + table + "\n")
        write_text_atomic(tx.path / "report.json", json.dumps(
            {"config": dataclasses.asdict(cfg), "runs": runs, "lnp": lnp[0],
             "rows": runs[0]["rows"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
