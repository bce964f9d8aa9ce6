"""Sequence task generators for recurrent (spiking) networks, deterministic by seed.

* :func:`sequential_digits`: scikit-learn's 8x8 handwritten digits presented row by row
  (8 steps x 8 inputs) or pixel by pixel (64 steps x 1 input), with a stratified train/test split.
* :func:`copy_task`: remember a sequence of symbols across a delay and reproduce it.
* :func:`adding_task`: add the two values marked in a long sequence of random numbers.
* :func:`lorenz_task`: predict the Lorenz system's ``x`` ahead from its past ``x`` alone (the
  hidden ``y``, ``z`` must be inferred from the history: the task needs memory).

Every generator returns a :class:`SequenceTask` of numpy arrays with axes
``(sample, time, feature)``; nothing here imports model code.

References
----------
Hochreiter & Schmidhuber (1997), Long short-term memory, Neural Computation 9(8), sec. 5.4
(adding problem) and sec. 5.2 (copy/noise-free long-lag tasks).
Arjovsky, Shah & Bengio (2016), Unitary evolution recurrent neural networks, ICML, sec. 4.1-4.2.
Lorenz (1963), Deterministic nonperiodic flow, J. Atmos. Sci. 20, 130-141, eqs. 25-27
(sigma 10, rho 28, beta 8/3).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["SequenceTask", "sequential_digits", "copy_task", "copy_memory_task", "adding_task",
           "lorenz_task", "memoryless_loss", "TASKS"]


@dataclasses.dataclass(frozen=True)
class SequenceTask:
    """Inputs and targets of a sequence task (numpy arrays).

    Attributes
    ----------
    x_train, x_test : float32 arrays, (sample, time, feature)
    y_train, y_test : arrays
        Class labels (sample,) for classification; per-step targets (sample, time) or scalar
        targets (sample,) for the copy / adding tasks.
    mask_train, mask_test : bool arrays (sample, time) or None
        Steps at which the output is scored (copy task).
    n_classes : int or None
        Number of classes (output units) for classification-type tasks.
    meta : dict
        Generator name and arguments (for provenance).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None = None
    mask_train: np.ndarray | None = None
    mask_test: np.ndarray | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def n_steps(self) -> int:
        return int(self.x_train.shape[1])


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.extend(idx[: int(round(test_fraction * idx.size))])
    test = np.sort(np.asarray(test, dtype=int))
    train = np.setdiff1d(np.arange(y.size), test)
    return rng.permutation(train), rng.permutation(test)


def _digits_rows(images):
    return images  # (n, 8 rows, 8 columns): one row per step


def _digits_pixels(images):
    return images.reshape(images.shape[0], 64, 1)


_DIGIT_ORDERS = {"row": _digits_rows, "pixel": _digits_pixels}


def sequential_digits(
    *,
    order: str = "row",
    repeat: int = 1,
    test_fraction: float = 0.2,
    permute: bool = False,
    seed: int = 0,
) -> SequenceTask:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) as sequences.

    Parameters
    ----------
    order : {"row", "pixel"}
        ``"row"``: 8 steps of 8 pixel intensities; ``"pixel"``: 64 steps of one intensity.
    repeat : int
        Present each step ``repeat`` times in a row (gives spiking neurons time to integrate).
    test_fraction : float in (0, 1)
        Held-out fraction, stratified by class.
    permute : bool
        Permuted-sequential variant: one fixed random permutation of the steps (drawn from
        ``seed``) applied to every image, which destroys local structure in time.
    seed : int
        Seed of the split, the shuffling and the permutation.

    Returns
    -------
    SequenceTask
        Inputs scaled to ``[0, 1]`` (float32), labels int32, ``n_classes = 10``.

    Raises
    ------
    ValueError
        For an unknown ``order``, ``repeat < 1`` or ``test_fraction`` outside (0, 1).
    """
    try:  # lazy: scikit-learn ships the 8x8 digits (no download)
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is a test/bench extra
        raise ImportError("sequential_digits needs scikit-learn: pip install scikit-learn") from err

    if order not in _DIGIT_ORDERS:
        raise ValueError(f"order must be one of {sorted(_DIGIT_ORDERS)}, got {order!r}")
    repeat = _check_int("repeat", repeat, 1)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x = _DIGIT_ORDERS[order](images)
    if permute:
        x = x[:, np.random.default_rng([seed, 1]).permutation(x.shape[1])]
    x = np.repeat(x, repeat, axis=1)
    y = digits.target.astype(np.int32)
    train, test = _stratified_split(y, test_fraction, np.random.default_rng(seed))
    meta = {"task": "sequential_digits", "order": order, "repeat": repeat,
            "test_fraction": test_fraction, "permute": bool(permute), "seed": seed}
    return SequenceTask(x[train], y[train], x[test], y[test], n_classes=10, meta=meta)


def _copy_batch(n, length, delay, n_symbols, rng):
    t_total = 2 * length + delay + 1
    symbols = rng.integers(0, n_symbols, size=(n, length))
    # channels: n_symbols one-hot symbols, 1 blank, 1 "go" delimiter
    x = np.zeros((n, t_total, n_symbols + 2), np.float32)
    x[np.arange(n)[:, None], np.arange(length)[None, :], symbols] = 1.0
    x[:, length:, n_symbols] = 1.0  # blank after the sequence
    x[:, length + delay, n_symbols] = 0.0
    x[:, length + delay, n_symbols + 1] = 1.0  # go signal
    y = np.full((n, t_total), n_symbols, np.int32)  # target: blank ...
    y[:, length + delay + 1:] = symbols  # ... then the sequence
    mask = np.zeros((n, t_total), bool)
    mask[:, length + delay + 1:] = True
    return x, y, mask


def copy_task(
    *,
    n_train: int = 1000,
    n_test: int = 200,
    length: int = 5,
    delay: int = 10,
    n_symbols: int = 8,
    seed: int = 0,
) -> SequenceTask:
    """Copy task: reproduce ``length`` symbols after a ``delay`` and a go signal.

    Inputs have ``n_symbols + 2`` channels (one-hot symbols, blank, go); the sequence lasts
    ``2 length + delay + 1`` steps. Targets are class indices per step (``n_symbols`` = blank);
    ``mask`` marks the ``length`` recall steps, which alone are scored.
    Chance accuracy on the recall steps is ``1 / n_symbols``.
    """
    n_train = _check_int("n_train", n_train, 1)
    n_test = _check_int("n_test", n_test, 1)
    length = _check_int("length", length, 1)
    delay = _check_int("delay", delay, 0)
    n_symbols = _check_int("n_symbols", n_symbols, 2)
    rng = np.random.default_rng(seed)
    xtr, ytr, mtr = _copy_batch(n_train, length, delay, n_symbols, rng)
    xte, yte, mte = _copy_batch(n_test, length, delay, n_symbols, rng)
    meta = {"task": "copy", "length": length, "delay": delay, "n_symbols": n_symbols,
            "seed": seed}
    return SequenceTask(xtr, ytr, xte, yte, n_classes=n_symbols + 1, mask_train=mtr,
                        mask_test=mte, meta=meta)


def _copy_memory_batch(n, delay, length, rng):
    t_total = delay + 2 * length
    symbols = rng.integers(1, 9, size=(n, length))
    codes = np.zeros((n, t_total), np.int32)
    codes[:, :length] = symbols
    codes[:, length + delay - 1] = 9  # the marker: recall starts at the next step
    x = np.eye(10, dtype=np.float32)[codes]
    y = np.zeros((n, t_total), np.int32)
    y[:, -length:] = symbols
    return x, y


def copy_memory_task(
    *, delay: int = 10, n_train: int = 10000, n_test: int = 1000, length: int = 10,
    seed: int = 0,
) -> SequenceTask:
    """The copy task of Arjovsky et al. (2016) as Keller et al. (2024) run it.

    ``length`` symbols drawn from 1..8, then ``delay - 1`` blanks (code 0), the marker 9, and
    ``length`` blanks during which the symbols must be recalled; ``T + 2 length`` steps in all,
    inputs one-hot over the 10 codes. Targets are codes per step: 0 until the recall, then the
    symbols; every step is scored (cross-entropy over 10 outputs, ``mask`` all true). The
    memoryless baseline (blank, then uniform over the 8 symbols) scores
    ``length log 8 / (T + 2 length)`` (:func:`memoryless_loss`).
    """
    delay = _check_int("delay", delay, 1)
    n_train = _check_int("n_train", n_train, 1)
    n_test = _check_int("n_test", n_test, 1)
    length = _check_int("length", length, 1)
    rng = np.random.default_rng(seed)
    xtr, ytr = _copy_memory_batch(n_train, delay, length, rng)
    xte, yte = _copy_memory_batch(n_test, delay, length, rng)
    meta = {"task": "copy_memory", "delay": delay, "length": length, "seed": seed}
    return SequenceTask(xtr, ytr, xte, yte, n_classes=10, mask_train=np.ones(ytr.shape, bool),
                        mask_test=np.ones(yte.shape, bool), meta=meta)


def _adding_batch(n, length, rng):
    values = rng.uniform(0.0, 1.0, size=(n, length)).astype(np.float32)
    first = rng.integers(0, length // 2, size=n)
    second = rng.integers(length // 2, length, size=n)
    markers = np.zeros((n, length), np.float32)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[np.arange(n), first] + values[np.arange(n), second]).astype(np.float32)
    return x, y


def adding_task(
    *, n_train: int = 1000, n_test: int = 200, length: int = 50, seed: int = 0
) -> SequenceTask:
    """Adding task: two channels (values U[0, 1], markers); target = sum of the marked values.

    One marker falls in the first half of the sequence, one in the second. Predicting the
    constant 1.0 gives a mean squared error of 1/6 (the variance of the sum), the baseline a
    model must beat.
    """
    n_train = _check_int("n_train", n_train, 1)
    n_test = _check_int("n_test", n_test, 1)
    length = _check_int("length", length, 2)
    rng = np.random.default_rng(seed)
    xtr, ytr = _adding_batch(n_train, length, rng)
    xte, yte = _adding_batch(n_test, length, rng)
    meta = {"task": "adding", "length": length, "seed": seed}
    return SequenceTask(xtr, ytr, xte, yte, meta=meta)


def _lorenz_rk4(state: np.ndarray, dt: float, steps: int, sigma=10.0, rho=28.0,
                beta=8.0 / 3.0) -> np.ndarray:
    """``steps`` RK4 steps of the Lorenz system for a batch of states ``(n, 3)``; returns the
    trajectory ``(n, steps, 3)`` (float64)."""

    def f(u):
        x, y, z = u[:, 0], u[:, 1], u[:, 2]
        return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], 1)

    out = np.empty((state.shape[0], steps, 3))
    u = state.astype(np.float64)
    for t in range(steps):
        k1 = f(u)
        k2 = f(u + 0.5 * dt * k1)
        k3 = f(u + 0.5 * dt * k2)
        k4 = f(u + dt * k3)
        u = u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[:, t] = u
    return out


def _lorenz_batch(n, length, horizon, dt, substeps, washout, rng):
    start = rng.normal(0.0, 1.0, size=(n, 3)) * np.array([8.0, 9.0, 9.0]) + [0.0, 0.0, 25.0]
    burn = _lorenz_rk4(start, dt / substeps, 1000)[:, -1]  # onto the attractor
    traj = _lorenz_rk4(burn, dt / substeps, (length + horizon) * substeps)[:, substeps - 1::substeps]
    x = traj[:, :length, 0]
    y = traj[:, horizon:horizon + length, 0]
    mask = np.zeros((n, length), bool)
    mask[:, washout:] = True
    return x, y, mask


def lorenz_task(
    *, n_train: int = 512, n_test: int = 128, length: int = 100, horizon: int = 10,
    dt: float = 0.02, washout: int = 20, seed: int = 0,
) -> SequenceTask:
    """Lorenz-system prediction from a partial observation: ``x(t) -> x(t + horizon dt)``.

    Each sample is a trajectory of the Lorenz system (sigma 10, rho 28, beta 8/3; RK4 with
    ``dt / 4`` substeps, started on the attractor after a burn-in from a random state). Only
    the ``x`` coordinate is given (one input channel) and the target at every step is ``x``
    ``horizon`` samples later; ``y`` and ``z`` are hidden, so a model must infer them from the
    history (a delay embedding): memory is needed. Inputs and targets are standardised by the
    training inputs' mean and sd (in ``meta``). ``mask`` scores the steps after ``washout``.
    The bar without memory, :func:`memoryless_loss`, is the test error of the best prediction
    from the current input alone (the conditional mean in 64 quantile bins of the training
    inputs).
    """
    n_train = _check_int("n_train", n_train, 1)
    n_test = _check_int("n_test", n_test, 1)
    length = _check_int("length", length, 2)
    horizon = _check_int("horizon", horizon, 1)
    washout = _check_int("washout", washout, 0)
    if washout >= length:
        raise ValueError(f"washout ({washout}) must be shorter than length ({length})")
    if not (isinstance(dt, int | float) and 0 < dt <= 0.05):
        raise ValueError(f"dt must be in (0, 0.05] (RK4 stays accurate on the attractor), got "
                         f"{dt!r}")
    rng = np.random.default_rng(seed)
    xtr, ytr, mtr = _lorenz_batch(n_train, length, horizon, float(dt), 4, washout, rng)
    xte, yte, mte = _lorenz_batch(n_test, length, horizon, float(dt), 4, washout, rng)
    mean, sd = float(xtr.mean()), float(xtr.std())
    z = lambda a: ((a - mean) / sd).astype(np.float32)  # noqa: E731
    meta = {"task": "lorenz", "length": length, "horizon": horizon, "dt": float(dt),
            "washout": washout, "seed": seed, "mean": mean, "sd": sd}
    return SequenceTask(z(xtr)[..., None], z(ytr), z(xte)[..., None], z(yte), mask_train=mtr,
                        mask_test=mte, meta=meta)


def _memoryless_regression(task: SequenceTask, bins: int = 64) -> float:
    """Test MSE of the conditional mean of the target given the current input alone."""
    xtr = task.x_train[..., 0][task.mask_train]
    ytr = task.y_train[task.mask_train]
    edges = np.quantile(xtr, np.linspace(0, 1, bins + 1)[1:-1])
    means = np.bincount(np.searchsorted(edges, xtr), weights=ytr, minlength=bins) / np.maximum(
        np.bincount(np.searchsorted(edges, xtr), minlength=bins), 1)
    xte = task.x_test[..., 0][task.mask_test]
    return float(np.mean((task.y_test[task.mask_test] - means[np.searchsorted(edges, xte)])
                         ** 2))


def memoryless_loss(task: SequenceTask) -> float:
    """Test loss of the best model without memory of past inputs, the bar a model must pass.

    * ``copy_memory``: ``length log 8 / (T + 2 length)`` (blanks are predictable from the
      step alone; a recalled symbol is a guess among 8).
    * ``copy``: ``log n_symbols`` per scored recall step.
    * ``adding``: the variance of the test targets (mean squared error of predicting their
      mean; 1/6 in expectation).
    * ``sequential_digits``: the entropy (nats) of the training class frequencies.
    * ``lorenz``: the mean squared error of the conditional mean of the target given the
      current input (64 quantile bins of the training inputs), on the scored test steps.
    """
    kind = task.meta.get("task")
    if kind == "copy_memory":
        n_steps = task.y_test.shape[1]
        return float(task.meta["length"] * np.log(8.0) / n_steps)
    if kind == "copy":
        return float(np.log(task.meta["n_symbols"]))
    if kind == "adding":
        return float(np.var(task.y_test))
    if kind == "lorenz":
        return _memoryless_regression(task)
    if kind == "sequential_digits":
        p = np.bincount(task.y_train) / task.y_train.size
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    raise ValueError(f"memoryless_loss: unknown task {kind!r} in task.meta")


#: name -> generator, for scripts that pick a task by name.
TASKS = {"sequential_digits": sequential_digits, "copy": copy_task,
         "copy_memory": copy_memory_task, "adding": adding_task, "lorenz": lorenz_task}
