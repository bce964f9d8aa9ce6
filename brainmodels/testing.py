"""Assertions for numerical code, in the spirit of ``numpy.testing``, used by the test suite.

* :func:`assert_close` states tolerances in units of the floating-point epsilon of the result's
  dtype (``ulps``), so a test says *how many roundings* it allows, not a bare ``1e-5`` that
  means one thing in float32 and another in float64.
* :func:`compilations` counts XLA compilations inside a ``with`` block: the one retrace check
  for every jitted path ("a second call with the same shapes compiles nothing").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

__all__ = ["assert_close", "eps", "compilations"]


def eps(dtype: Any) -> float:
    """Machine epsilon of a floating dtype (``np.finfo(dtype).eps``); float32 for integers."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype if np.issubdtype(dtype, np.inexact) else np.float32).eps)


def assert_close(actual: Any, desired: Any, *, ulps: float, dtype: Any = None,
                 scale: float | str = "max", err_msg: str = "") -> None:
    """Assert ``|actual - desired| <= ulps * eps(dtype) * scale`` elementwise.

    Parameters
    ----------
    actual, desired : array_like
        Same shape (broadcasting is not allowed: a shape mismatch is an error).
    ulps : float
        Allowed error in units of ``eps(dtype)``. State why in the test (e.g. "a sum of n
        terms: n ulps").
    dtype : dtype, optional
        Whose epsilon; default the dtype of ``actual`` (float32 for integers).
    scale : float or {"max", "element"}
        ``"max"`` (default): relative to ``max |desired|`` (1 if all zero), the usual yardstick
        for a vector computed as a whole; ``"element"``: relative to each ``|desired|``
        (for values spanning decades); a number: an absolute scale.
    err_msg : str
        Prepended to the failure message.
    """
    a = np.asarray(actual)
    d = np.asarray(desired)
    if a.shape != d.shape:
        raise AssertionError(f"{err_msg} shapes differ: actual {a.shape}, desired {d.shape}")
    e = eps(a.dtype if dtype is None else dtype)
    a64, d64 = a.astype(np.float64), d.astype(np.float64)
    if isinstance(scale, str):
        if scale == "max":
            ref = float(np.max(np.abs(d64))) if d64.size else 1.0
            ref = ref if ref > 0 else 1.0
        elif scale == "element":
            ref = np.abs(d64)
        else:
            raise ValueError(f"scale must be 'max', 'element' or a number, got {scale!r}")
    else:
        ref = float(scale)
    tol = ulps * e * ref
    err = np.abs(a64 - d64)
    bad = ~(err <= tol) | (np.isnan(a64) != np.isnan(d64))
    bad &= ~(np.isnan(a64) & np.isnan(d64))
    if np.any(bad):
        worst = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape) if err.ndim else ()
        ulp_err = np.max(err / (e * (ref if np.isscalar(ref) else np.maximum(ref, 1e-300))))
        raise AssertionError(
            f"{err_msg} {int(bad.sum())} of {bad.size} elements differ by more than {ulps} ulps "
            f"(eps {e:.3g}); largest error {ulp_err:.3g} ulps; at {tuple(map(int, worst))}: "
            f"actual {a64[worst]!r}, desired {d64[worst]!r}")


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.count += 1
            self.names.append(message.split(" ")[1])


@contextlib.contextmanager
def compilations() -> Iterator[_Counter]:
    """Count the XLA compilations inside the block (``counter.count``, ``counter.names``).

    Example
    -------
    >>> import jax, jax.numpy as jnp
    >>> f = jax.jit(lambda x: 2 * x)
    >>> _ = f(jnp.ones(3))
    >>> with compilations() as c:
    ...     _ = f(jnp.ones(3))
    >>> c.count
    0
    """
    counter = _Counter()
    loggers = [logging.getLogger(name) for name in ("jax._src.dispatch", "jax._src.interpreters.pxla")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(counter)
        lg.setLevel(logging.WARNING)
    try:
        with jax.log_compiles(True):
            yield counter
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(counter)
            lg.setLevel(level)
