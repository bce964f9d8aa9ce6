"""Backpropagation through time for spiking networks: optax through ``nnx.Optimizer``.

The model's ``__call__`` runs a ``lax.scan`` over time; ``jax.grad`` of the loss differentiates
through the scan (BPTT) with surrogate spike derivatives. :func:`train_classifier` runs the
package's one training loop, :func:`brainmodels.training.fit`, on the losses of
:data:`LOSSES`; :func:`train_step` is the same update as one ``nnx.jit``-ed call, for custom
loops. Trained models export to single msgpack files (:func:`save_checkpoint`).

References
----------
Neftci, Mostafa & Zenke (2019), Surrogate gradient learning in spiking neural networks,
IEEE Signal Process. Mag. 36(6), sec. IV (BPTT with surrogate derivatives).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization

from brainmodels._io import atomic_path
from brainmodels._types import ArrayLike, Float

__all__ = [
    "READOUTS",
    "TrainConfig",
    "TrainResult",
    "LOSSES",
    "task_loss",
    "make_optimizer",
    "train_step",
    "evaluate",
    "train_classifier",
    "save_checkpoint",
    "load_checkpoint",
]

#: How readout potentials ``(batch, time, class)`` become logits ``(batch, class)``.
READOUTS: dict[str, Callable] = {
    "mean": lambda y: y.mean(axis=1),
    "last": lambda y: y[:, -1],
    "max": lambda y: y.max(axis=1),
}

#: Number of times each jitted function was traced (a test checks a 2nd call adds none).
_TRACE_COUNTS: dict[str, int] = {"train_step": 0, "eval_step": 0}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (the script's flags map onto these one to one).

    Attributes
    ----------
    epochs, batch_size : int
    learning_rate : float
        Adam step size.
    grad_clip : float or None
        Global gradient-norm clip.
    readout : {"mean", "last", "max"}
        Readout potentials over time -> logits (``sequence_ce``).
    loss : {"sequence_ce", "step_ce", "final_mse", "step_mse"}
        See :data:`LOSSES`.
    rate_reg : float
        Weight of the penalty ``mean((rate - target_rate)^2)`` on hidden firing rates
        (spikes per step), which keeps the network out of silence and saturation.
    target_rate : float
    seed : int
        Shuffling seed.
    trainable : str or None
        Train only the parameters whose path matches this regular expression (``"w_out|b_out"``:
        the readout-only regime, the recurrent network left as initialised); None: all.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    grad_clip: float | None = 1.0
    readout: str = "mean"
    loss: str = "sequence_ce"
    rate_reg: float = 0.0
    target_rate: float = 0.05
    seed: int = 0
    trainable: str | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {sorted(READOUTS)}, got {self.readout!r}")
        _check_loss(self.loss)
        if self.rate_reg < 0:
            raise ValueError(f"rate_reg must be >= 0, got {self.rate_reg!r}")


@dataclasses.dataclass
class TrainResult:
    """History (one dict per epoch), the optimizer (holding the trained model) and the run of
    :func:`brainmodels.training.fit` (its xarray history, trace count, resume step)."""

    history: list[dict[str, float]]
    optimizer: Any
    run: Any = None

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def make_optimizer(model: nnx.Module, config: TrainConfig) -> nnx.Optimizer:
    """Adam (with optional gradient clipping) over the model's ``nnx.Param`` leaves."""
    from brainmodels import training

    return training.make_optimizer(model, training.TrainConfig(
        lr=config.learning_rate, clip_norm=config.grad_clip, trainable=config.trainable))


def _sequence_ce(readout_fn, out, y, mask):
    logits = readout_fn(out.readout)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return ce, (jnp.argmax(logits, axis=-1) == y).astype(ce.dtype)


def _step_ce(readout_fn, out, y, mask):
    ce = optax.softmax_cross_entropy_with_integer_labels(out.readout, y)  # (batch, time)
    m = mask.astype(ce.dtype)
    denom = jnp.maximum(m.sum(axis=1), 1.0)
    correct = (jnp.argmax(out.readout, axis=-1) == y).astype(ce.dtype)
    return (ce * m).sum(axis=1) / denom, (correct * m).sum(axis=1) / denom


def _final_mse(readout_fn, out, y, mask):
    err = (out.readout[:, -1, 0] - y) ** 2
    return err, err


def _step_mse(readout_fn, out, y, mask):
    m = mask.astype(out.readout.dtype)
    err = ((out.readout[..., 0] - y) ** 2 * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)
    return err, err


#: name -> (per-sample ``(loss, score)`` function, score name, +1 if higher is better).
#: ``sequence_ce``: one label per sequence from the readout over time (digits);
#: ``step_ce``: a label per step, scored where ``mask`` is true (copy task);
#: ``final_mse``: squared error of readout unit 0 at the last step (adding task);
#: ``step_mse``: squared error of readout unit 0 at every step where ``mask`` is true
#: (per-step regression targets (sample, time): Lorenz prediction).
LOSSES: dict[str, tuple[Callable, str, int]] = {
    "sequence_ce": (_sequence_ce, "accuracy", 1),
    "step_ce": (_step_ce, "accuracy", 1),
    "final_mse": (_final_mse, "mse", -1),
    "step_mse": (_step_mse, "mse", -1),
}


def task_loss(model, x, y, mask, *, loss: str = "sequence_ce", readout: str = "mean",
              rate_reg: float = 0.0, target_rate: float = 0.05):
    """Mean loss of ``LOSSES[loss]`` (+ a firing-rate penalty).

    Returns
    -------
    (loss, (score, mean_rate))
        ``score`` is the accuracy (cross-entropy losses) or the MSE.
    """
    out = model(x)
    per_sample, score = LOSSES[loss][0](READOUTS[readout], out, y, mask)
    rates = out.spikes.mean(axis=(0, 1))
    total = per_sample.mean() + rate_reg * jnp.mean((rates - target_rate) ** 2)
    return total, (score.mean(), rates.mean())


@partial(nnx.jit, static_argnames=("loss", "readout", "rate_reg", "target_rate"))
def train_step(model, optimizer, x: Float[ArrayLike, "batch time feature"], y, mask, *,
               loss: str = "sequence_ce", readout: str = "mean", rate_reg: float = 0.0,
               target_rate: float = 0.05):
    """One Adam step of BPTT; returns ``(loss, score, mean_rate)`` of the batch.

    ``y`` is (batch,) labels or targets, or (batch, time) labels for ``step_ce``; ``mask`` is
    (batch, time), used by ``step_ce`` only (pass ones otherwise).
    """
    _TRACE_COUNTS["train_step"] += 1  # runs only while tracing
    loss_fn = partial(task_loss, loss=loss, readout=readout, rate_reg=rate_reg,
                      target_rate=target_rate)
    (value, (score, rate)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, y, mask)
    optimizer.update(model, grads)
    return value, score, rate


@partial(nnx.jit, static_argnames=("loss", "readout"))
def _eval_step(model, x, y, mask, w, *, loss: str, readout: str):
    _TRACE_COUNTS["eval_step"] += 1
    out = model(x)
    per_sample, score = LOSSES[loss][0](READOUTS[readout], out, y, mask)
    rates = jnp.einsum("b,bn->n", w, out.spikes.mean(axis=1))
    return jnp.sum(w * score), jnp.sum(w * per_sample), rates


def _prepare(x, y, mask, loss):
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32 if LOSSES[loss][1] == "mse" else np.int32)
    if x.ndim != 3 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x must be (sample, time, feature) and y must have as many samples, "
                         f"got {x.shape} and {y.shape}")
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must have shape {x.shape[:2]}, got {mask.shape}")
    return x, y, mask


def _pad(a, bs):
    return np.concatenate([a, np.zeros((bs - a.shape[0], *a.shape[1:]), a.dtype)])


def evaluate(model, x: Float[ArrayLike, "sample time feature"], y, mask=None, *,
             loss: str = "sequence_ce", batch_size: int = 256,
             readout: str = "mean") -> dict[str, Any]:
    """Score (accuracy or MSE), mean loss and per-neuron firing rates (spikes/step).

    The last batch is zero-padded with zero weight, so every call uses one compiled shape.

    Returns
    -------
    dict
        ``{"loss", "accuracy" or "mse", "rates" (neuron,)}``.
    """
    _check_loss(loss)
    x, y, mask = _prepare(x, y, mask, loss)
    n, bs = y.shape[0], min(batch_size, y.shape[0])
    score, total, rates = 0.0, 0.0, 0.0
    for start in range(0, n, bs):
        xb, yb, mb = (a[start:start + bs] for a in (x, y, mask))
        w = np.zeros(bs, np.float32)
        w[:xb.shape[0]] = 1.0
        if xb.shape[0] < bs:
            xb, yb, mb = _pad(xb, bs), _pad(yb, bs), _pad(mb, bs)
        s, e, r = _eval_step(model, xb, yb, mb, w, loss=loss, readout=readout)
        score, total, rates = score + float(s), total + float(e), rates + np.asarray(r)
    return {"loss": total / n, LOSSES[loss][1]: score / n, "rates": rates / n}


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")


@functools.lru_cache(maxsize=64)
def _objective(loss: str, readout: str, rate_reg: float, target_rate: float) -> Callable:
    """``(model, (x, y, mask)) -> (loss, {score, rate})`` for :func:`brainmodels.training.fit`;
    one object per setting, so a second run reuses the compiled step."""
    metric = LOSSES[loss][1]

    def objective(model, batch):
        value, (score, rate) = task_loss(model, *batch, loss=loss, readout=readout,
                                         rate_reg=rate_reg, target_rate=target_rate)
        return value, {metric: score, "rate": rate}

    return objective


def train_classifier(model, x_train, y_train, *, config: TrainConfig = TrainConfig(),
                     x_val=None, y_val=None, mask_train=None, mask_val=None,
                     checkpoint_dir: str | os.PathLike | None = None,
                     progress: Callable | None = None, log: Callable[[dict], None] | None = None
                     ) -> TrainResult:
    """Train a sequence model (e.g. :class:`~brainmodels.snn.rsnn.RSNN`) with BPTT.

    The loop is :func:`brainmodels.training.fit`: ``epochs * (samples // batch_size)`` Adam
    steps (the incomplete last batch of each epoch is dropped, so the step compiles once),
    evaluated at the end of every epoch.

    Parameters
    ----------
    model : nnx.Module
        Called as ``model(x) -> (readout (batch, time, unit), spikes (batch, time, neuron))``;
        updated in place.
    x_train, y_train : arrays
        Inputs (sample, time, feature); labels (sample,) or (sample, time), or regression
        targets (sample,), as ``config.loss`` expects (see :data:`LOSSES`).
    config : TrainConfig
    x_val, y_val : arrays, optional
        Evaluated after every epoch.
    mask_train, mask_val : bool arrays (sample, time), optional
        Scored steps for ``loss="step_ce"`` (the copy task's recall window).
    checkpoint_dir : path, optional
        orbax checkpoints of the run in ``checkpoint_dir/run`` (calling again with the same
        folder and config resumes, bit-identical to an uninterrupted run), and the model alone
        as ``last.msgpack`` after each epoch and ``best.msgpack`` on the best validation score
        (see :func:`save_checkpoint`), written atomically.
    progress : callable, optional
        Wraps the iterable of steps, e.g. ``tqdm.tqdm`` (the library draws no bar itself).
    log : callable, optional
        Called with each epoch's record (``train_loss``, ``train_<score>``, ``val_*``).

    Returns
    -------
    TrainResult
    """
    from brainmodels import training

    data = _prepare(x_train, y_train, mask_train, config.loss)
    bs = min(config.batch_size, data[0].shape[0])
    per_epoch = data[0].shape[0] // bs
    _, metric, sign = LOSSES[config.loss]
    val = None if x_val is None else _prepare(x_val, y_val, mask_val, config.loss)
    where = "test" if val is not None else "train"
    loop_config = training.TrainConfig(
        steps=config.epochs * per_epoch, batch_size=bs, lr=config.learning_rate,
        clip_norm=config.grad_clip, eval_every=per_epoch, seed=config.seed,
        trainable=config.trainable,
        monitor=f"{where}_{metric}", monitor_mode="max" if sign > 0 else "min")
    objective = _objective(config.loss, config.readout, config.rate_reg, config.target_rate)
    best = {"value": -np.inf}

    def epoch_record(row: dict) -> dict:
        record = {"epoch": int(row["step"]) // per_epoch, "train_loss": row["train_loss"],
                  f"train_{metric}": row[f"train_{metric}"]}
        if val is not None:
            record.update({"val_loss": row["test_loss"], f"val_{metric}": row[f"test_{metric}"],
                           "val_rate": row["test_rate"]})
        return record

    def on_epoch(row: dict, current) -> None:
        record = epoch_record(row)
        if log is not None:
            log(record)
        if checkpoint_dir is not None:
            meta = {"epoch": record["epoch"], "config": dataclasses.asdict(config), **record}
            save_checkpoint(current, Path(checkpoint_dir) / "last.msgpack", metadata=meta)
            value = sign * record.get(f"val_{metric}", record[f"train_{metric}"])
            if value > best["value"]:
                best["value"] = value
                save_checkpoint(current, Path(checkpoint_dir) / "best.msgpack", metadata=meta)

    run = training.fit(model, objective, data, loop_config, eval_data=val,
                       checkpoint_dir=None if checkpoint_dir is None
                       else Path(checkpoint_dir) / "run",
                       progress=progress, callback=on_epoch)
    rows = run.history.to_dataframe().reset_index().to_dict("records")
    return TrainResult([{k: (int(v) if k == "epoch" else float(v)) for k, v in
                         epoch_record(r).items()} for r in rows], run.optimizer, run)


#: format stamp of :func:`save_checkpoint` files (bump when the layout changes)
CHECKPOINT_FORMAT = "brainmodels-checkpoint/1"


def save_checkpoint(model: nnx.Module, path: str | os.PathLike, *,
                    metadata: dict | None = None) -> Path:
    """Write the model's state (all variables) and JSON metadata to ``path``, atomically.

    The file is msgpack (arrays and strings only: loading it runs no code, unlike pickle),
    stamped with the format version and the model's class for :func:`load_checkpoint`.
    """
    pure = nnx.to_pure_dict(nnx.state(model))
    payload = {"format": CHECKPOINT_FORMAT, "model": type(model).__name__,
               "state": jax.tree.map(np.asarray, pure),
               "metadata": json.dumps(metadata or {}, default=str)}
    with atomic_path(path) as tmp:
        tmp.write_bytes(serialization.msgpack_serialize(payload))
    return Path(path)


def load_checkpoint(model: nnx.Module, path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (in place).

    Returns
    -------
    dict
        The checkpoint's metadata.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; a file that is not a brainmodels checkpoint (or of another format
        version); a checkpoint of another model class; a state whose structure, shapes or
        dtypes do not match ``model``. The model is untouched when it raises.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as err:  # msgpack raises several kinds for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable brainmodels checkpoint: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format", "none") if isinstance(payload, dict) else "none"
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format: {found})")
    if payload.get("model") != type(model).__name__:
        raise ValueError(f"checkpoint {path} holds a {payload.get('model')}, not a "
                         f"{type(model).__name__}")
    state = nnx.state(model)
    expected = jax.tree.map(lambda a: (np.shape(a), np.dtype(a.dtype).name),
                            nnx.to_pure_dict(state))
    got = jax.tree.map(lambda a: (np.shape(a), np.asarray(a).dtype.name), payload["state"])
    if expected != got:
        raise ValueError(f"checkpoint {path} does not match the model: expected variables "
                         f"{expected}, got {got}")
    nnx.replace_by_pure_dict(state, payload["state"])
    nnx.update(model, state)
    return json.loads(payload["metadata"])
