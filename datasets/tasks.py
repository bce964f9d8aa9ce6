"""Sequence task generators for recurrent (spiking) networks, deterministic by seed.

* :func:`sequential_digits`: scikit-learn's 8x8 handwritten digits presented row by row
  (8 steps x 8 inputs) or pixel by pixel (64 steps x 1 input), with a stratified train/test split.
* :func:`copy_task`: remember a sequence of symbols across a delay and reproduce it.
* :func:`adding_task`: add the two values marked in a long sequence of random numbers.

Every generator returns a :class:`SequenceTask` of numpy arrays with axes
``(sample, time, feature)``; nothing here imports model code.

References
----------
Hochreiter & Schmidhuber (1997), Long short-term memory, Neural Computation 9(8), sec. 5.4
(adding problem) and sec. 5.2 (copy/noise-free long-lag tasks).
Arjovsky, Shah & Bengio (2016), Unitary evolution recurrent neural networks, ICML, sec. 4.1-4.2.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["SequenceTask", "sequential_digits", "copy_task", "adding_task", "TASKS"]


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
    seed : int
        Seed of the split and the shuffling.

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
    x = np.repeat(_DIGIT_ORDERS[order](images), repeat, axis=1)
    y = digits.target.astype(np.int32)
    train, test = _stratified_split(y, test_fraction, np.random.default_rng(seed))
    meta = {"task": "sequential_digits", "order": order, "repeat": repeat,
            "test_fraction": test_fraction, "seed": seed}
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


#: name -> generator, for scripts that pick a task by name.
TASKS = {"sequential_digits": sequential_digits, "copy": copy_task, "adding": adding_task}
