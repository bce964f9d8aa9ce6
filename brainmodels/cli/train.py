"""``brainmodels train MODEL --task TASK``: train a recurrent model on a sequence task.

``MODEL`` is ``wave-rnn``, ``irnn``, ``gru``, ``lstm`` (brainmodels.wave_rnn) or ``rsnn`` (the
spiking RSNN of brainmodels.snn). Writes ``history.nc`` (``train_loss``, ``test_loss`` and
``test_accuracy`` where it applies, over ``step``), orbax checkpoints under ``checkpoints/``
and ``curves.png``; shows a progress bar. Sizes default to the paper's copy task: wRNN 100
neurons x 6 channels (12,724 parameters) against iRNN-100 (12,210).
"""

from __future__ import annotations

from brainmodels.cli._common import add_out_argument, add_seed_argument, progress

MODEL_NAMES = ("wave-rnn", "irnn", "gru", "lstm", "rsnn")
TASK_NAMES = ("copy", "adding", "sdigits", "psdigits")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a recurrent model (wave-RNN, iRNN, GRU, LSTM, RSNN) "
                                     "on a sequence task",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=MODEL_NAMES)
    p.add_argument("--task", required=True, choices=TASK_NAMES,
                   help="copy (Keller et al. 2024), adding, sdigits / psdigits (8x8 digits "
                        "pixel by pixel, permuted)")
    p.add_argument("--delay", type=int, default=10, help="copy delay T / adding length "
                                                         "(default: 10)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps (default: 500; "
                   "rsnn trains whole epochs: at least one)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--neurons", type=int, default=100, help="hidden neurons (default: 100)")
    p.add_argument("--channels", type=int, default=6, help="wave-RNN channels (default: 6)")
    p.add_argument("--eval-every", type=int, default=50)
    add_seed_argument(p)
    add_out_argument(p, "train_out")
    p.set_defaults(func=run)


def _task(args):
    from brainmodels.datasets import (
        adding_task,
        copy_memory_task,
        memoryless_loss,
        sequential_digits,
    )

    if args.task == "copy":
        t, objective, n_out = copy_memory_task(delay=args.delay, seed=args.seed), "sequence", 10
    elif args.task == "adding":
        t, objective, n_out = adding_task(length=max(args.delay, 2), seed=args.seed), \
            "last_value", 1
    else:
        t = sequential_digits(order="pixel", permute=args.task == "psdigits", seed=args.seed)
        objective, n_out = "last_class", 10
    return t, objective, n_out, memoryless_loss(t)


def _rsnn(args, t, objective, n_out, bar):
    from flax import nnx

    from brainmodels.snn.rsnn import RSNN
    from brainmodels.snn.train import TrainConfig, train_classifier

    loss = {"sequence": "step_ce", "last_class": "sequence_ce"}.get(objective)
    if loss is None:
        raise ValueError("rsnn trains on the classification tasks (copy, sdigits, psdigits)")
    model = RSNN(t.n_inputs, args.neurons, n_out, rngs=nnx.Rngs(args.seed))
    epochs = max(1, args.steps * args.batch // len(t.x_train))
    cfg = TrainConfig(epochs=epochs, batch_size=args.batch, learning_rate=args.lr, loss=loss,
                      seed=args.seed)
    return model, train_classifier(model, t.x_train, t.y_train, config=cfg, x_val=t.x_test,
                                   y_val=t.y_test, mask_train=t.mask_train,
                                   mask_val=t.mask_test, checkpoint_dir=args.out / "checkpoints",
                                   progress=bar)


def run(args) -> int:
    import functools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainmodels.training import TrainConfig
    from brainmodels.wave_rnn import build_model, count_params, train

    t, objective, n_out, baseline = _task(args)
    bar = functools.partial(progress, desc=f"{args.model} {args.task}", disable=None)
    if args.model == "rsnn":
        model, res = _rsnn(args, t, objective, n_out, bar)
    else:
        model = build_model(args.model, t.n_inputs, n_out, n_neurons=args.neurons,
                            n_channels=args.channels, seed=args.seed)
        data = lambda x, y, m: {"x": x, "y": y} | ({"mask": m} if m is not None else {})  # noqa: E731
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, clip_norm=1.0,
                          eval_every=min(args.eval_every, args.steps), seed=args.seed,
                          checkpoint_every=min(args.eval_every, args.steps))
        res = train(model, objective, data(t.x_train, t.y_train, t.mask_train),
                    data(t.x_test, t.y_test, t.mask_test), cfg,
                    checkpoint_dir=args.out / "checkpoints", progress=bar)
    hist = res.run.history if args.model == "rsnn" else res.history  # snn wraps fit's result
    hist = hist.assign_attrs(model=args.model, task=args.task, params=count_params(model),
                                    memoryless_loss=baseline)
    hist.to_netcdf(args.out / "history.nc", engine="h5netcdf")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(hist.step, hist.train_loss, label="train")
    ax.plot(hist.step, hist.test_loss, label="test")
    ax.axhline(baseline, color="k", ls="--", lw=1, label="memoryless")
    ax.set(xlabel="step", ylabel="loss", yscale="log",
           title=f"{args.model} ({count_params(model):,} params), {args.task}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "curves.png", dpi=100)
    plt.close(fig)
    last = hist.isel(step=-1)
    print(f"{args.model}: {count_params(model):,} parameters; test loss {float(last.test_loss):.4f}"
          f" (memoryless {baseline:.4f})")
    return 0
