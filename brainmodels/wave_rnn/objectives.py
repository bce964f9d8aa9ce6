"""Losses of the sequence tasks and a one-call trainer for the wave-RNN family.

Objectives (``batch`` is a dict of arrays with a leading sample axis):

* ``"sequence"``: cross-entropy at every step where ``batch["mask"]`` is true, averaged over
  scored steps (the copy tasks); accuracy over the same steps.
* ``"last_class"``: cross-entropy of the output at the last step (sequential digits).
* ``"last_value"``: squared error of output 0 at the last step (the adding task).

This module takes arrays only; it imports no dataset code.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import optax
from flax import nnx

from brainmodels.training import TrainConfig, TrainResult, fit

from .models import IRNN, MODELS, WaveRNN

__all__ = ["OBJECTIVES", "build_model", "train"]


def _sequence(model, batch):
    logits = model(batch["x"])
    mask = batch["mask"].astype(logits.dtype)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
    n = jnp.maximum(mask.sum(), 1.0)
    acc = ((logits.argmax(-1) == batch["y"]) * mask).sum() / n
    return (ce * mask).sum() / n, {"accuracy": acc}


def _last_class(model, batch):
    logits = model(batch["x"])[:, -1]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    return ce, {"accuracy": (logits.argmax(-1) == batch["y"]).mean()}


def _last_value(model, batch):
    pred = model(batch["x"])[:, -1, 0]
    return jnp.mean((pred - batch["y"]) ** 2)


#: objective name -> ``loss_fn(model, batch) -> loss or (loss, metrics)``
OBJECTIVES: dict[str, Callable] = {"sequence": _sequence, "last_class": _last_class,
                                   "last_value": _last_value}


def build_model(name: str, n_inputs: int, n_outputs: int, *, n_neurons: int = 100,
                n_channels: int = 6, seed: int = 0, **kwargs) -> nnx.Module:
    """A model of the family by CLI name (``wave-rnn``, ``irnn``, ``gru``, ``lstm``).

    ``n_channels`` applies to the wave-RNN only; ``kwargs`` go to the constructor.
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    rngs = nnx.Rngs(seed)
    if MODELS[name] is WaveRNN:
        return WaveRNN(n_inputs, n_neurons, n_channels, n_outputs, rngs=rngs, **kwargs)
    if MODELS[name] is IRNN:
        return IRNN(n_inputs, n_neurons, n_outputs, rngs=rngs, **kwargs)
    return MODELS[name](n_inputs, n_neurons, n_outputs, rngs=rngs, **kwargs)


def train(model: nnx.Module, objective: str, train_data: dict, test_data: dict,
          config: TrainConfig, *, checkpoint_dir=None, progress=None) -> TrainResult:
    """Train ``model`` in place on ``train_data`` with :func:`brainmodels.training.fit`.

    ``train_data`` / ``test_data``: dicts with ``x`` ``(sample, time, input)``, ``y`` and,
    for ``objective="sequence"``, ``mask`` ``(sample, time)``. The history holds
    ``train_loss``, ``test_loss`` and, for the classification objectives, ``test_accuracy``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    if objective == "sequence" and ("mask" not in train_data or "mask" not in test_data):
        raise ValueError("objective 'sequence' needs a 'mask' in train_data and test_data")
    return fit(model, OBJECTIVES[objective], train_data, config, eval_data=test_data,
               checkpoint_dir=checkpoint_dir, progress=progress)
