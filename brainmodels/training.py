"""The one training loop of brainmodels: optax through ``nnx.Optimizer``, one jitted step.

Every trainable model (spiking RSNNs, AKOrN, wave-RNNs, nonlinear encoders) trains with
:func:`fit`. It owns what each model family would otherwise re-write:

* an optax optimizer (Adam, AdamW or SGD) with an optional schedule, warm-up and global-norm
  clipping, built from a frozen :class:`TrainConfig`;
* minibatches, either shuffled from arrays (one permutation per epoch, drawn from
  ``(seed, epoch)``) or drawn by a callable ``data(key, step)`` with ``key`` folded from the seed
  and the step, so the batch of any step is known without replaying the run;
* one jitted step on the split ``(model, optimizer)`` state (donated, so parameters update in
  place); it is traced once per batch shape, and :attr:`TrainResult.traces` says how often;
* evaluation every ``eval_every`` steps, early stopping on a monitored metric with the best
  state restored, and the history as an xarray Dataset over ``step``;
* orbax checkpoints at evaluation steps; calling :func:`fit` again with the same
  ``checkpoint_dir`` resumes, and the result is bit-identical to an uninterrupted run;
* a progress meter passed in (``progress=tqdm.tqdm``), never imported.

Example
-------
>>> import jax.numpy as jnp, numpy as np
>>> from flax import nnx
>>> from brainmodels.training import TrainConfig, fit
>>> x = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
>>> y = x @ np.array([1.0, -2.0, 0.5], "float32")
>>> model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
>>> loss = lambda m, b: jnp.mean((m(b[0])[:, 0] - b[1]) ** 2)
>>> res = fit(model, loss, (x, y), TrainConfig(steps=300, batch_size=32, lr=0.05,
...                                            eval_every=100), eval_data=(x, y))
>>> bool(res.history.test_loss[-1] < 1e-3)
True
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from flax import nnx

from brainmodels.data import provenance

__all__ = ["TrainConfig", "TrainResult", "fit", "make_optimizer", "OPTIMIZERS", "SCHEDULES"]

#: optimizer name -> ``(learning_rate, weight_decay) -> optax.GradientTransformation``
OPTIMIZERS: dict[str, Callable[[Any, float], optax.GradientTransformation]] = {
    "adam": lambda lr, wd: optax.adam(lr),
    "adamw": lambda lr, wd: optax.adamw(lr, weight_decay=wd),
    "sgd": lambda lr, wd: optax.sgd(lr),
}

#: schedule name -> ``(peak_lr, steps, warmup_steps) -> optax schedule``
SCHEDULES: dict[str, Callable[[float, int, int], optax.Schedule]] = {
    "constant": lambda lr, steps, warm: (
        optax.linear_schedule(0.0, lr, warm) if warm else optax.constant_schedule(lr)),
    "cosine": lambda lr, steps, warm: optax.warmup_cosine_decay_schedule(
        0.0, lr, warm, max(steps, warm + 1)),
}


def _positive_int(name: str, v: Any, minimum: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit`; checked on construction.

    Attributes
    ----------
    steps : int
        Optimisation steps (minibatches).
    batch_size : int
    lr : float
        Peak learning rate.
    optimizer : {"adam", "adamw", "sgd"}
    weight_decay : float
        Decoupled weight decay (``adamw`` only).
    schedule : {"constant", "cosine"}
        Cosine decays to zero at ``steps``; both ramp linearly over ``warmup_steps``.
    warmup_steps : int
    clip_norm : float or None
        Global gradient-norm clip applied before the optimizer.
    eval_every : int
        Steps between evaluations (and history rows); the last step is always evaluated.
    patience : int or None
        Stop after this many evaluations without improvement of ``monitor`` and restore the
        best state; ``None`` never stops early.
    monitor : str
        A history variable (``test_loss``, ``test_accuracy``, ``train_loss``...).
    monitor_mode : {"min", "max"}
    seed : int
        Shuffling (array data) or the ``key`` given to a data callable.
    checkpoint_every : int or None
        Steps between checkpoints, a multiple of ``eval_every`` (default: every evaluation).
    ema : float or None
        Keep an exponential moving average of the parameters, ``p_ema <- ema p_ema + (1 -
        ema) p`` after every step (from the initial parameters), returned as
        :attr:`TrainResult.ema_model` and checkpointed with the run. Evaluation, early
        stopping and ``model`` use the trained parameters.
    trainable : str or None
        A regular expression over the parameters' paths (``"w_out|b_out"``, joined with
        ``/``): only the parameters it matches (``re.search``) are updated, the others stay
        as initialised (a readout-only regime, a linear probe). None trains every
        ``nnx.Param``.
    restore_best : bool
        At the end of the run, give ``model`` the state of the best evaluation of
        ``monitor`` (with ``patience`` set), also when the run was not stopped early: what
        an estimator selected on a validation split wants.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float | None = None
    eval_every: int = 100
    patience: int | None = None
    monitor: str = "test_loss"
    monitor_mode: str = "min"
    seed: int = 0
    checkpoint_every: int | None = None
    ema: float | None = None
    trainable: str | None = None
    restore_best: bool = False

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every"):
            _positive_int(name, getattr(self, name))
        _positive_int("warmup_steps", self.warmup_steps, 0)
        _positive_int("seed", self.seed, 0)
        if not (isinstance(self.lr, int | float) and self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        for name, table in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in table:
                raise ValueError(f"{name} must be one of {sorted(table)}, got "
                                 f"{getattr(self, name)!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm!r}")
        if self.patience is not None:
            _positive_int("patience", self.patience)
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.trainable is not None:
            try:
                re.compile(self.trainable)
            except (re.error, TypeError) as err:
                raise ValueError(f"trainable must be a regular expression over parameter "
                                 f"paths, got {self.trainable!r} ({err})") from None
        if self.restore_best and self.patience is None:
            raise ValueError("restore_best needs patience (the best state is kept only when "
                             "early stopping is on); pass patience=config.steps to never stop")
        if self.ema is not None and not (isinstance(self.ema, float | int)
                                         and 0.0 <= self.ema < 1.0):
            raise ValueError(f"ema must be a decay in [0, 1) or None, got {self.ema!r}")
        if self.checkpoint_every is not None:
            _positive_int("checkpoint_every", self.checkpoint_every)
            if self.checkpoint_every % self.eval_every:
                raise ValueError(f"checkpoint_every ({self.checkpoint_every}) must be a multiple "
                                 f"of eval_every ({self.eval_every}): checkpoints are written at "
                                 f"evaluation steps")


def _optimizer_key(config: TrainConfig) -> tuple:
    steps = config.steps if config.schedule != "constant" else None
    return (config.optimizer, config.lr, config.weight_decay, config.schedule,
            config.warmup_steps, config.clip_norm, steps)


@functools.lru_cache(maxsize=32)
def _transform(key: tuple) -> optax.GradientTransformation:
    # One object per setting: the transform is part of the optimizer's graph definition, so
    # reusing it lets a second fit() with the same model class and settings reuse the compiled
    # step instead of compiling again.
    name, lr, wd, schedule, warmup, clip, steps = key
    tx = OPTIMIZERS[name](SCHEDULES[schedule](lr, steps or 1, warmup), wd)
    if clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    return tx


def _param_paths(model: nnx.Module) -> list[str]:
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return ["/".join(map(str, path)) for path, _ in flat]


@functools.lru_cache(maxsize=32)
def _frozen_transform(key: tuple, pattern: str) -> optax.GradientTransformation:
    # parameters whose path does not match get zero updates (and no optimizer state)
    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "train" if re.search(pattern, "/".join(
                str(getattr(k, "key", getattr(k, "idx", k))) for k in path)) else "frozen",
            params)

    return optax.multi_transform({"train": _transform(key), "frozen": optax.set_to_zero()},
                                 labels)


def make_optimizer(model: nnx.Module, config: TrainConfig) -> nnx.Optimizer:
    """``nnx.Optimizer`` over the model's ``nnx.Param`` leaves, as ``config`` describes
    (those matching ``config.trainable`` only, when it is set)."""
    if config.trainable is None:
        return nnx.Optimizer(model, _transform(_optimizer_key(config)), wrt=nnx.Param)
    paths = _param_paths(model)
    if not any(re.search(config.trainable, p) for p in paths):
        raise ValueError(f"trainable={config.trainable!r} matches no parameter of "
                         f"{type(model).__name__}; its parameters are {paths}")
    return nnx.Optimizer(model, _frozen_transform(_optimizer_key(config), config.trainable),
                         wrt=nnx.Param)


@dataclasses.dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    model : nnx.Module
        The trained model (the object passed in, updated in place).
    optimizer : nnx.Optimizer
    history : xarray.Dataset
        One row per evaluation over dim ``step`` (the step count after which it was taken):
        ``train_loss`` and ``train_<metric>`` (means since the previous row) and ``test_<name>``.
    best_step : int or None
        The step with the best ``monitor`` value (``None`` when it was never recorded).
    stopped_early : bool
    resumed_from : int or None
        The checkpoint step this call started from.
    traces : int
        Times the step function was traced by this call (1 for one batch shape).
    ema_model : nnx.Module or None
        A copy of the model with the moving average of its parameters (``TrainConfig.ema``).
    """

    model: nnx.Module
    optimizer: nnx.Optimizer
    history: xr.Dataset
    best_step: int | None
    stopped_early: bool
    resumed_from: int | None
    traces: int
    ema_model: nnx.Module | None = None


# ------------------------------------------------------------------------------ compiled steps

_STEPS: OrderedDict = OrderedDict()  # (loss_fn, graphdef, config fields) -> jitted step
_EVALS: OrderedDict = OrderedDict()
_CACHE_SIZE = 16


def _cached(cache: OrderedDict, key: Any, build: Callable):
    try:
        fn = cache.pop(key)
    except (KeyError, TypeError):  # TypeError: an unhashable loss function -> no reuse
        fn = build()
    try:
        cache[key] = fn
    except TypeError:
        return fn
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return fn


def _loss_parts(out: Any) -> tuple[jax.Array, dict]:
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise TypeError("loss_fn must return a scalar loss or (loss, dict of metrics)")
        return out[0], dict(out[1])
    return out, {}


def _build_step(loss_fn: Callable, graphdef, ema: float | None = None) -> Callable:
    counter = {"traces": 0}

    def step(state, batch):
        counter["traces"] += 1  # runs only while tracing
        if ema is not None:
            state, averaged = state
        model, optimizer = nnx.merge(graphdef, state)

        def objective(m):
            loss, metrics = _loss_parts(loss_fn(m, batch))
            if jnp.ndim(loss) != 0:
                raise ValueError(f"loss_fn must return a scalar loss, got shape "
                                 f"{jnp.shape(loss)}")
            return loss, metrics

        (loss, metrics), grads = nnx.value_and_grad(objective, has_aux=True)(model)
        optimizer.update(model, grads)
        new = nnx.state((model, optimizer))
        if ema is not None:
            averaged = jax.tree.map(lambda a, p: ema * a + (1.0 - ema) * p, averaged,
                                    nnx.state(model, nnx.Param))
            new = (new, averaged)
        return new, loss, metrics

    jitted = jax.jit(step, donate_argnums=0)
    jitted.counter = counter
    return jitted


def _build_eval(eval_fn: Callable, graphdef) -> Callable:
    def evaluate(state, data):
        model, _ = nnx.merge(graphdef, state)
        out = eval_fn(model, data)
        if not isinstance(out, Mapping):
            raise TypeError(f"eval_fn must return a dict of scalars, got {type(out).__name__}")
        return dict(out)

    return jax.jit(evaluate)


def _default_eval(loss_fn: Callable) -> Callable:
    def evaluate(model, data):
        loss, metrics = _loss_parts(loss_fn(model, data))
        return {"loss": loss, **metrics}

    evaluate.loss_fn = loss_fn
    return evaluate


# -------------------------------------------------------------------------------------- data


def _array_batches(data: Any, config: TrainConfig) -> Callable[[int], Any]:
    """``step -> batch`` for a pytree of arrays sharing a leading sample axis."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data holds no arrays")
    leaves_n = {np.shape(a)[0] if np.ndim(a) else None for a in leaves}
    if len(leaves_n) != 1 or None in leaves_n:
        raise ValueError(f"every array in data must share the leading sample axis, got "
                         f"leading sizes {sorted(map(str, leaves_n))}")
    n = leaves_n.pop()
    if config.batch_size > n:
        raise ValueError(f"batch_size ({config.batch_size}) exceeds the {n} samples in data")
    data = jax.tree.map(lambda a: a if isinstance(a, jax.Array) else np.asarray(a), data)
    per_epoch = n // config.batch_size  # the incomplete last batch is dropped: one shape
    orders: dict[int, np.ndarray] = {}

    def batch(step: int):
        epoch, i = divmod(step, per_epoch)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = np.random.default_rng((config.seed, epoch)).permutation(n)
        idx = orders[epoch][i * config.batch_size:(i + 1) * config.batch_size]
        return jax.tree.map(lambda a: a[idx], data)

    return batch


def _batches(data: Any, config: TrainConfig) -> Callable[[int], Any]:
    if callable(data):
        base = jax.random.key(config.seed)
        return lambda step: data(jax.random.fold_in(base, step), step)
    return _array_batches(data, config)


# ------------------------------------------------------------------------------------ the loop


def _config_record(config: TrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _check_resumable(saved: dict, config: TrainConfig, directory) -> None:
    now = _config_record(config)
    free = {"steps"} if config.schedule == "constant" else set()
    # a field added after the checkpoint was written reads as its default
    defaults = _config_record(TrainConfig())
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    diff = sorted(k for k in now if k not in free and saved.get(k) != now[k])
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in diff)
        raise ValueError(f"checkpoint_dir {directory} holds a run with another configuration "
                         f"({detail}); use a new checkpoint_dir or the same TrainConfig")


class _Loop:
    """Bookkeeping of one run: accumulated train metrics, history rows, early stopping."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.rows: list[dict] = []
        self.pending: list[tuple] = []  # (loss, metrics) device values since the last row
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0

    def record(self, step: int, test: dict) -> dict:
        losses = np.asarray(jnp.stack([p[0] for p in self.pending]), np.float64)
        if not np.isfinite(losses).all():
            first = step - len(losses) + 1 + int(np.argmin(np.isfinite(losses)))
            raise FloatingPointError(f"training diverged: non-finite loss at step {first}; "
                                     f"lower lr or set clip_norm")
        row = {"step": step, "train_loss": float(losses.mean())}
        for name in self.pending[0][1]:
            row[f"train_{name}"] = float(np.mean([np.asarray(p[1][name]) for p in self.pending]))
        row.update({f"test_{k}": float(np.asarray(v)) for k, v in test.items()})
        self.pending = []
        self.rows.append(row)
        return row

    def improved(self, row: dict) -> bool:
        """Update the early-stopping state with ``row``; True when it is the best so far."""
        if self.config.monitor not in row:
            raise ValueError(f"monitor {self.config.monitor!r} is not recorded; recorded: "
                             f"{sorted(k for k in row if k != 'step')}")
        value = row[self.config.monitor]
        sign = 1.0 if self.config.monitor_mode == "min" else -1.0
        if self.best is None or sign * value < sign * self.best:
            self.best, self.best_step, self.bad = value, row["step"], 0
            return True
        self.bad += 1
        return False

    def state_record(self) -> dict:
        return {"rows": self.rows, "best": self.best, "best_step": self.best_step,
                "bad": self.bad}

    def load(self, rec: dict) -> None:
        self.rows, self.best, self.best_step, self.bad = (
            rec["rows"], rec["best"], rec["best_step"], rec["bad"])

    def history(self, model: nnx.Module, config: TrainConfig) -> xr.Dataset:
        steps = np.array([r["step"] for r in self.rows], np.int64)
        names = [k for k in (self.rows[0] if self.rows else {}) if k != "step"]
        data = {k: ("step", np.array([r.get(k, np.nan) for r in self.rows])) for k in names}
        attrs = provenance(type(model).__name__, params=_config_record(config),
                           seed=config.seed, best_step=-1 if self.best_step is None
                           else int(self.best_step))
        return xr.Dataset(data, coords={"step": steps}, attrs=attrs)


def fit(model: nnx.Module, loss_fn: Callable, data: Any, config: TrainConfig = TrainConfig(),
        *, eval_data: Any = None, eval_fn: Callable | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        progress: Callable | None = None,
        callback: Callable[[dict, nnx.Module], None] | None = None) -> TrainResult:
    """Train ``model`` in place by minimising ``loss_fn`` over minibatches of ``data``.

    Parameters
    ----------
    model : nnx.Module
    loss_fn : callable
        ``loss_fn(model, batch) -> loss`` or ``(loss, {name: scalar})``; traced under ``jit``.
    data : pytree of arrays, or callable
        Arrays sharing a leading sample axis (shuffled each epoch; the incomplete last batch
        is dropped so every step has one shape), or ``data(key, step) -> batch``, called on the
        host each step with ``key = fold_in(key(seed), step)`` (fresh task samples, augmentation
        keys).
    config : TrainConfig
    eval_data : pytree, optional
        Passed whole to ``eval_fn`` every ``config.eval_every`` steps.
    eval_fn : callable, optional
        ``eval_fn(model, eval_data) -> {name: scalar}``, jitted; recorded as ``test_<name>``.
        Default: ``loss_fn`` on ``eval_data`` (``test_loss`` and its metrics).
    checkpoint_dir : path, optional
        orbax checkpoints of model, optimizer and loop state. If it already holds a run with
        the same configuration, training resumes from its latest step.
    progress : callable, optional
        Wraps the iterable of steps (e.g. ``tqdm.tqdm``).
    callback : callable, optional
        ``callback(row, model)`` after each evaluation: the history row (a dict) and a view of
        the model at that step (for logging or exporting it; do not keep it: the next step
        reuses its buffers).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Inconsistent data, an unknown monitor, or a checkpoint of another configuration.
    FloatingPointError
        A non-finite training loss (reported at the next evaluation, with its step).
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be an nnx.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, batch)")
    if eval_fn is not None and eval_data is None:
        raise ValueError("eval_fn needs eval_data")
    batch_at = _batches(data, config)
    optimizer = make_optimizer(model, config)
    graphdef, state = nnx.split((model, optimizer))
    # the step donates its state; donate copies, never the caller's arrays, which another
    # model may share (nnx.clone, a pruned copy): training one must not delete the other's
    state = jax.tree.map(jnp.copy, state)
    ema = None if config.ema is None else float(config.ema)
    if ema is not None:  # (model and optimizer, the averaged parameters) from the start
        state = (state, jax.tree.map(jnp.copy, nnx.state(model, nnx.Param)))
    step_fn = _cached(_STEPS, (loss_fn, graphdef, ema),
                      lambda: _build_step(loss_fn, graphdef, ema))
    traces0 = step_fn.counter["traces"] if hasattr(step_fn, "counter") else 0
    evaluate = None
    if eval_data is not None:
        fn = eval_fn or _default_eval(loss_fn)
        evaluate = _cached(_EVALS, (eval_fn or loss_fn, graphdef), lambda: _build_eval(fn, graphdef))

    loop, start, resumed, best_state = _Loop(config), 0, None, None
    ckpt = None
    if checkpoint_dir is not None:
        from brainmodels._checkpoint import RunCheckpoints

        ckpt = RunCheckpoints(checkpoint_dir)
        latest = ckpt.latest_step()
        if latest is not None:
            _check_resumable(ckpt.record(latest)["config"], config, ckpt.directory)
            state, best_state, rec = ckpt.restore(latest, state, best=config.patience is not None)
            loop.load(rec["loop"])
            start = resumed = latest
    every = config.checkpoint_every or config.eval_every
    stopped = False
    steps = range(start, config.steps)
    try:
        for step in steps if progress is None else progress(steps):
            state, loss, metrics = step_fn(state, batch_at(step))
            loop.pending.append((loss, metrics))
            done = step + 1
            if done % config.eval_every and done != config.steps:
                continue
            trained = state if ema is None else state[0]
            row = loop.record(done, evaluate(trained, eval_data) if evaluate is not None
                              else {})
            if (config.patience is not None or config.monitor in row) and loop.improved(row):
                if config.patience is not None:  # the step donates `state`: keep a copy
                    best_state = jax.tree.map(jnp.copy, state)
            if callback is not None:
                callback(dict(row), nnx.merge(graphdef, trained)[0])
            if ckpt is not None and (done % every == 0 or done == config.steps):
                ckpt.save(done, state, {"config": _config_record(config),
                                        "loop": loop.state_record()}, best=best_state)
            if config.patience is not None and loop.bad >= config.patience:
                stopped = True
                break
    finally:
        if ckpt is not None:
            ckpt.close()
        # the model's own buffers were donated to the first step: give it the latest state,
        # also when the loop is interrupted
        final = best_state if (stopped or config.restore_best) and best_state is not None \
            else state
        nnx.update((model, optimizer), final if ema is None else final[0])
    traces = (step_fn.counter["traces"] - traces0) if hasattr(step_fn, "counter") else 0
    ema_model = None
    if ema is not None:  # a separate copy: the trained model keeps its own parameters
        ema_model = nnx.merge(graphdef, jax.tree.map(jnp.copy, final[0]))[0]
        nnx.update(ema_model, jax.tree.map(jnp.copy, final[1]))
    return TrainResult(model, optimizer, loop.history(model, config), loop.best_step, stopped,
                       resumed, traces, ema_model)

