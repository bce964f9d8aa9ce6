"""Keller et al. (ICLR 2024) at CPU scale: wave-RNN against the equal-size iRNN.

Runs the copy task (T in 10, 30, 100), the adding task and sequential (and permuted
sequential) 8x8 digits for each model and seed, and prints a markdown table with the parameter
count of every row, the final test loss (mean +- sd over seeds), the test accuracy where it
applies and the task's memoryless baseline. Rows are appended to ``--csv`` as they finish.

    python scripts/wave_rnn_paper.py                  # the full table (~20 min on 2 cores)
    python scripts/wave_rnn_paper.py --quick          # one seed, few steps
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np

from brainmodels.datasets import adding_task, copy_memory_task, memoryless_loss, sequential_digits
from brainmodels.training import TrainConfig
from brainmodels.wave_rnn import build_model, count_params
from brainmodels.wave_rnn.objectives import train


def _data(x, y, mask=None):
    d = {"x": x, "y": y}
    if mask is not None:
        d["mask"] = mask
    return d


def experiments(steps_scale: float):
    """(label, task, objective, n_outputs, {model: size kwargs}, steps, lr)."""
    s = lambda n: max(10, int(n * steps_scale))  # noqa: E731
    copy_sizes = {"wave-rnn": dict(n_neurons=100, n_channels=6), "irnn": dict(n_neurons=100)}
    for T, steps in ((10, 150), (30, 150), (100, 80)):
        yield (f"copy T={T}", copy_memory_task(delay=T, n_train=4096, n_test=512), "sequence",
               10, copy_sizes, s(steps), 1e-3)
    yield ("adding L=50", adding_task(length=50, n_train=4096, n_test=512), "last_value", 1,
           {"wave-rnn": dict(n_neurons=50, n_channels=8), "irnn": dict(n_neurons=100)},
           s(300), 1e-3)
    digit_sizes = {"wave-rnn": dict(n_neurons=64, n_channels=4), "irnn": dict(n_neurons=100)}
    for permute in (False, True):
        yield (("ps" if permute else "s") + "-digits 8x8",
               sequential_digits(order="pixel", permute=permute), "last_class", 10,
               digit_sizes, s(300), 1e-3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps-scale", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.steps_scale = 1, 0.1
    rows = []
    writer = None
    if args.csv:
        f = open(args.csv, "w", newline="")  # noqa: SIM115
        writer = csv.writer(f)
        writer.writerow(["task", "model", "params", "seed", "steps", "test_loss", "test_accuracy",
                         "baseline", "seconds"])
    for label, task, objective, n_out, sizes, steps, lr in experiments(args.steps_scale):
        base = memoryless_loss(task)
        for name, size in sizes.items():
            losses, accs = [], []
            for seed in range(args.seeds):
                model = build_model(name, task.n_inputs, n_out, seed=seed, **size)
                cfg = TrainConfig(steps=steps, batch_size=args.batch, lr=lr, clip_norm=1.0,
                                  eval_every=steps, seed=seed)
                t0 = time.perf_counter()
                res = train(model, objective, _data(task.x_train, task.y_train, task.mask_train),
                            _data(task.x_test, task.y_test, task.mask_test), cfg)
                dt = time.perf_counter() - t0
                h = res.history.isel(step=-1)
                losses.append(float(h.test_loss))
                acc = float(h.test_accuracy) if "test_accuracy" in h else float("nan")
                accs.append(acc)
                if writer:
                    writer.writerow([label, name, count_params(model), seed, steps,
                                     losses[-1], acc, base, round(dt, 1)])
                    f.flush()
                print(f"{label:14s} {name:8s} seed {seed}: test loss {losses[-1]:.4f} "
                      f"(baseline {base:.4f}) in {dt:.0f} s", flush=True)
            rows.append((label, name, count_params(model), steps, np.mean(losses),
                         np.std(losses), np.mean(accs), base))
    print("\n| task | model | params | steps | test loss (mean +- sd) | test acc | "
          "memoryless baseline |\n|---|---|---|---|---|---|---|")
    for label, name, n, steps, m, sd, acc, base in rows:
        acc_s = "" if np.isnan(acc) else f"{acc:.3f}"
        print(f"| {label} | {name} | {n:,} | {steps} | {m:.4f} +- {sd:.4f} | {acc_s} | "
              f"{base:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
