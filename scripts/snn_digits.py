"""Train a (heterogeneous) recurrent SNN on sequential 8x8 digits with surrogate gradients.

    python scripts/snn_digits.py --out runs/digits --epochs 20
    python scripts/snn_digits.py --order pixel --repeat 1 --hidden 128 --epochs 40

Flags -> :class:`DigitsConfig` -> library calls (:func:`brainmodels.datasets.tasks.
sequential_digits`, :class:`brainmodels.snn.RSNN`, :func:`brainmodels.snn.train_classifier`).
Writes, atomically, to ``--out``: ``checkpoints/last.msgpack`` and ``best.msgpack`` (every
epoch), ``history.json`` and ``training.png`` (loss and accuracy curves).
``checkpoints/run/`` holds the orbax checkpoints of the run (model, optimizer and loop state):
``--resume`` continues an interrupted run from there and ends as the uninterrupted run would.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    out: str = "runs/snn_digits"
    epochs: int = 20
    hidden: int = 128
    order: str = "row"
    repeat: int = 2
    batch_size: int = 64
    learning_rate: float = 5e-3
    tau_ms: float = 10.0
    tau_distribution: str = "gamma"
    tau_cv: float = 0.5
    surrogate: str = "fast_sigmoid"
    reset: str = "subtract"
    rate_reg: float = 0.0
    seed: int = 0
    resume: bool = False


def parse_args(argv=None) -> DigitsConfig:
    d = DigitsConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=d.out, metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--hidden", type=int, default=d.hidden, help="recurrent LIF neurons")
    p.add_argument("--order", choices=["row", "pixel"], default=d.order,
                   help="row: 8 steps x 8 pixels; pixel: 64 steps x 1 pixel")
    p.add_argument("--repeat", type=int, default=d.repeat, help="steps per row/pixel")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", dest="learning_rate", type=float, default=d.learning_rate)
    p.add_argument("--tau-ms", type=float, default=d.tau_ms, help="mean membrane time constant")
    p.add_argument("--tau-distribution", default=d.tau_distribution,
                   help="constant, gamma, lognormal or uniform (heterogeneous timescales)")
    p.add_argument("--tau-cv", type=float, default=d.tau_cv)
    p.add_argument("--surrogate", default=d.surrogate, help="fast_sigmoid, arctan or triangle")
    p.add_argument("--reset", choices=["subtract", "zero"], default=d.reset)
    p.add_argument("--rate-reg", type=float, default=d.rate_reg, help="firing-rate penalty")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="continue the run in checkpoints/run")
    return DigitsConfig(**vars(p.parse_args(argv)))


def plot_history(history, path):
    import matplotlib.pyplot as plt

    from brainmodels._io import savefig_atomic

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="test")
    a.set(xlabel="epoch", ylabel="cross-entropy")
    b.plot(ep, [h["train_accuracy"] for h in history], label="train")
    b.plot(ep, [h["val_accuracy"] for h in history], label="test")
    b.axhline(0.1, color="grey", ls=":", label="chance")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    b.legend()
    fig.tight_layout()
    savefig_atomic(fig, path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    from flax import nnx

    from brainmodels._io import write_text_atomic
    from brainmodels.datasets.tasks import sequential_digits
    from brainmodels.snn import RSNN, TrainConfig, train_classifier

    out = Path(cfg.out)
    task = sequential_digits(order=cfg.order, repeat=cfg.repeat, seed=cfg.seed)
    net = RSNN(task.n_inputs, cfg.hidden, task.n_classes, tau_mem_ms=cfg.tau_ms,
               tau_out_ms=cfg.tau_ms, tau_distribution=cfg.tau_distribution, tau_cv=cfg.tau_cv,
               surrogate=cfg.surrogate, reset=cfg.reset, in_scale=2.0,
               rngs=nnx.Rngs(cfg.seed))
    run_dir = out / "checkpoints" / "run"
    if run_dir.exists() and not cfg.resume:
        raise SystemExit(f"error: {out} already holds a training run; pass --resume to continue "
                         f"it (same settings; --epochs may grow) or choose another --out")
    if cfg.resume and not run_dir.exists():
        raise SystemExit(f"error: --resume: no training run to continue in {run_dir}")
    train_cfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size,
                            learning_rate=cfg.learning_rate, rate_reg=cfg.rate_reg,
                            seed=cfg.seed)

    def log(rec):
        print(f"epoch {rec['epoch']:3d}  loss {rec['train_loss']:.3f}  "
              f"train {rec['train_accuracy']:.3f}  test {rec['val_accuracy']:.3f}  "
              f"rate {rec['val_rate']:.3f}/step", flush=True)

    result = train_classifier(net, task.x_train, task.y_train, config=train_cfg,
                              x_val=task.x_test, y_val=task.y_test,
                              checkpoint_dir=out / "checkpoints", log=log)
    if result.run.resumed_from is not None:
        print(f"resumed from step {result.run.resumed_from} of {out / 'checkpoints' / 'run'}")
    report = {"config": dataclasses.asdict(cfg), "history": result.history,
              "test_accuracy": result.final["val_accuracy"], "chance": 0.1}
    write_text_atomic(out / "history.json", json.dumps(report, indent=2))
    plot_history(result.history, out / "training.png")
    print(f"test accuracy {result.final['val_accuracy']:.3f} (chance 0.100); wrote {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
