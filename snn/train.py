"""Backpropagation through time for spiking networks: optax through ``nnx.Optimizer``.

The model's ``__call__`` runs a ``lax.scan`` over time; ``jax.grad`` of the loss differentiates
through the scan (BPTT) with surrogate spike derivatives. :func:`train_step` is ``nnx.jit``-ed
at module level and traced once per batch shape (drop the last incomplete batch, as
:func:`train_classifier` does). Checkpoints are msgpack files written atomically.

References
----------
Neftci, Mostafa & Zenke (2019), Surrogate gradient learning in spiking neural networks,
IEEE Signal Process. Mag. 36(6), sec. IV (BPTT with surrogate derivatives).
"""

# ruff: noqa: F722  (jaxtyping shape strings are not forward annotations)
from __future__ import annotations

import dataclasses
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
from brainmodels._types import ArrayLike, Float, Int

__all__ = [
    "READOUTS",
    "TrainConfig",
    "TrainResult",
    "TRACE_COUNTS",
    "classification_loss",
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
TRACE_COUNTS: dict[str, int] = {"train_step": 0, "eval_step": 0}


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
        Readout potentials over time -> logits.
    rate_reg : float
        Weight of the penalty ``mean((rate - target_rate)^2)`` on hidden firing rates
        (spikes per step), which keeps the network out of silence and saturation.
    target_rate : float
    seed : int
        Shuffling seed.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    grad_clip: float | None = 1.0
    readout: str = "mean"
    rate_reg: float = 0.0
    target_rate: float = 0.05
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {sorted(READOUTS)}, got {self.readout!r}")
        if self.rate_reg < 0:
            raise ValueError(f"rate_reg must be >= 0, got {self.rate_reg!r}")


@dataclasses.dataclass
class TrainResult:
    """History (one dict per epoch) and the optimizer (holding the trained model)."""

    history: list[dict[str, float]]
    optimizer: Any

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def make_optimizer(model: nnx.Module, config: TrainConfig) -> nnx.Optimizer:
    """Adam (with optional gradient clipping) over the model's ``nnx.Param`` leaves."""
    tx = optax.adam(config.learning_rate)
    if config.grad_clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip), tx)
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def classification_loss(model, x, y, *, readout: str = "mean", rate_reg: float = 0.0,
                        target_rate: float = 0.05):
    """Cross-entropy of the readout logits (+ a firing-rate penalty).

    Returns
    -------
    (loss, (accuracy, mean_rate))
    """
    out = model(x)
    logits = READOUTS[readout](out.readout)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    rates = out.spikes.mean(axis=(0, 1))
    loss = ce + rate_reg * jnp.mean((rates - target_rate) ** 2)
    acc = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return loss, (acc, rates.mean())


@partial(nnx.jit, static_argnames=("readout", "rate_reg", "target_rate"))
def train_step(model, optimizer, x: Float[ArrayLike, "batch time feature"],
               y: Int[ArrayLike, " batch"], *, readout: str = "mean", rate_reg: float = 0.0,
               target_rate: float = 0.05):
    """One Adam step of BPTT; returns ``(loss, accuracy, mean_rate)`` of the batch."""
    TRACE_COUNTS["train_step"] += 1  # runs only while tracing
    loss_fn = partial(classification_loss, readout=readout, rate_reg=rate_reg,
                      target_rate=target_rate)
    (loss, (acc, rate)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, y)
    optimizer.update(model, grads)
    return loss, acc, rate


@partial(nnx.jit, static_argnames=("readout",))
def _eval_step(model, x, y, w, *, readout: str = "mean"):
    TRACE_COUNTS["eval_step"] += 1
    out = model(x)
    logits = READOUTS[readout](out.readout)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    correct = (jnp.argmax(logits, axis=-1) == y).astype(w.dtype)
    rates = jnp.einsum("b,bn->n", w, out.spikes.mean(axis=1))
    return jnp.sum(w * correct), jnp.sum(w * ce), rates


def evaluate(model, x: Float[ArrayLike, "sample time feature"], y: Int[ArrayLike, " sample"],
             *, batch_size: int = 256, readout: str = "mean") -> dict[str, Any]:
    """Accuracy, mean cross-entropy and per-neuron firing rates (spikes/step) over a dataset.

    The last batch is zero-padded with zero weight, so every call uses one compiled shape.
    """
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    n = y.shape[0]
    if x.shape[0] != n:
        raise ValueError(f"x and y must have the same number of samples, got {x.shape[0]} and {n}")
    bs = min(batch_size, n)
    correct, ce, rates = 0.0, 0.0, 0.0
    for start in range(0, n, bs):
        xb, yb = x[start:start + bs], y[start:start + bs]
        w = np.ones(bs, np.float32)
        m = yb.shape[0]
        if m < bs:
            w[m:] = 0.0
            xb = np.concatenate([xb, np.zeros((bs - m, *xb.shape[1:]), xb.dtype)])
            yb = np.concatenate([yb, np.zeros(bs - m, yb.dtype)])
        c, e, r = _eval_step(model, xb, yb, w, readout=readout)
        correct, ce, rates = correct + float(c), ce + float(e), rates + np.asarray(r)
    return {"accuracy": correct / n, "loss": ce / n, "rates": rates / n}


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


def train_classifier(model, x_train, y_train, *, config: TrainConfig = TrainConfig(),
                     x_val=None, y_val=None, checkpoint_dir: str | os.PathLike | None = None,
                     progress: bool | None = None, log: Callable[[dict], None] | None = None
                     ) -> TrainResult:
    """Train a sequence classifier (e.g. :class:`~brainmodels.snn.rsnn.RSNN`) with BPTT.

    Parameters
    ----------
    model : nnx.Module
        Called as ``model(x) -> (readout (batch, time, class), spikes (batch, time, neuron))``;
        updated in place.
    x_train, y_train : arrays (sample, time, feature) and (sample,)
    config : TrainConfig
    x_val, y_val : arrays, optional
        Evaluated after every epoch.
    checkpoint_dir : path, optional
        Writes ``last.msgpack`` after each epoch (and ``best.msgpack`` on the best validation
        accuracy), atomically.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    log : callable, optional
        Called with each epoch's record.

    Returns
    -------
    TrainResult
    """
    from brainmodels.cli._common import progress as progress_bar

    x_train, y_train = np.asarray(x_train, np.float32), np.asarray(y_train, np.int32)
    if x_train.ndim != 3 or y_train.shape != (x_train.shape[0],):
        raise ValueError(f"x_train must be (sample, time, feature) and y_train (sample,), got "
                         f"{x_train.shape} and {y_train.shape}")
    bs = min(config.batch_size, x_train.shape[0])
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    steps = config.epochs * (x_train.shape[0] // bs)
    bar = progress_bar(total=steps, desc="train", disable=None if progress is None else not progress)
    history, best = [], -1.0
    kw = {"readout": config.readout, "rate_reg": config.rate_reg,
          "target_rate": config.target_rate}
    for epoch in range(config.epochs):
        losses, accs = [], []
        for idx in _batches(x_train.shape[0], bs, rng):
            loss, acc, _ = train_step(model, optimizer, x_train[idx], y_train[idx], **kw)
            losses.append(float(loss))
            accs.append(float(acc))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{accs[-1]:.2f}")
        if not np.isfinite(losses).all():
            raise FloatingPointError(f"training diverged in epoch {epoch} (non-finite loss); "
                                     "lower learning_rate or set grad_clip")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                  "train_accuracy": float(np.mean(accs))}
        if x_val is not None:
            ev = evaluate(model, x_val, y_val, readout=config.readout)
            record.update(val_loss=ev["loss"], val_accuracy=ev["accuracy"],
                          val_rate=float(np.mean(ev["rates"])))
        history.append(record)
        if log is not None:
            log(record)
        if checkpoint_dir is not None:
            meta = {"epoch": epoch + 1, "config": dataclasses.asdict(config), **record}
            save_checkpoint(model, Path(checkpoint_dir) / "last.msgpack", metadata=meta)
            if record.get("val_accuracy", -1.0) > best:
                best = record["val_accuracy"]
                save_checkpoint(model, Path(checkpoint_dir) / "best.msgpack", metadata=meta)
    bar.close()
    return TrainResult(history, optimizer)


def save_checkpoint(model: nnx.Module, path: str | os.PathLike, *,
                    metadata: dict | None = None) -> Path:
    """Write the model's state (all variables) and JSON metadata to ``path``, atomically."""
    pure = nnx.to_pure_dict(nnx.state(model))
    payload = {"state": jax.tree.map(np.asarray, pure),
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
        Missing file, or a state whose structure or shapes do not match ``model``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = serialization.msgpack_restore(path.read_bytes())
    state = nnx.state(model)
    expected = jax.tree.map(np.shape, nnx.to_pure_dict(state))
    got = jax.tree.map(np.shape, payload["state"])
    if expected != got:
        raise ValueError(f"checkpoint {path} does not match the model: expected variables "
                         f"{expected}, got {got}")
    nnx.replace_by_pure_dict(state, payload["state"])
    nnx.update(model, state)
    return json.loads(payload["metadata"])
