"""Checkpoints of a training run with orbax-checkpoint (the flax ecosystem's format).

One checkpoint holds the whole state of :func:`brainmodels.training.fit`: the model's and the
optimizer's variables (typed PRNG keys stored as their raw key data) and a JSON record of the
loop (step, history, early-stopping bookkeeping, the configuration that produced it). orbax
writes each step into a temporary folder and renames it when complete, so an interrupted save
never leaves a checkpoint that looks whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["RunCheckpoints"]


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_savable(tree: Any) -> Any:
    """Numpy leaves; typed PRNG keys become their ``uint32`` key data."""
    return jax.tree.map(lambda x: np.asarray(jax.random.key_data(x) if _is_key(x) else x), tree)


def from_savable(saved: Any, template: Any) -> Any:
    """Inverse of :func:`to_savable`, using ``template`` (the live state) for keys and dtypes."""

    def restore(s, t):
        if _is_key(t):
            return jax.random.wrap_key_data(np.asarray(s), impl=jax.random.key_impl(t))
        return jax.numpy.asarray(s, dtype=t.dtype)

    return jax.tree.map(restore, saved, template)


class RunCheckpoints:
    """The checkpoints of one run in ``directory`` (orbax ``CheckpointManager``, synchronous).

    Parameters
    ----------
    directory : path
        Created if missing.
    max_to_keep : int
        Older steps are deleted once this many are on disk.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"checkpoint_dir {self.directory} exists and is not a "
                                     f"folder")
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, record: dict, *, best: Any = None) -> None:
        """Write ``state`` (a pytree of arrays), ``record`` (JSON-able) and optionally the
        early-stopping ``best`` state as step ``step``."""
        args = self._ocp.args
        items = {"state": args.StandardSave(to_savable(state)), "record": args.JsonSave(record)}
        if best is not None:
            items["best"] = args.StandardSave(to_savable(best))
        self._manager.save(step, args=args.Composite(**items), force=True)
        self._manager.wait_until_finished()

    def record(self, step: int) -> dict:
        """The JSON record saved at ``step`` (read alone, before any array)."""
        out = self._manager.restore(step, args=self._ocp.args.Composite(
            record=self._ocp.args.JsonRestore()))
        return dict(out["record"])

    def restore(self, step: int, template: Any, *, best: bool = False
                ) -> tuple[Any, Any, dict]:
        """``(state, best state or None, record)`` saved at ``step``, shaped like ``template``."""
        args = self._ocp.args
        target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                              to_savable(template))
        items = {"state": args.StandardRestore(target), "record": args.JsonRestore()}
        has_best = best and (self.directory / str(step) / "best").exists()
        if has_best:
            items["best"] = args.StandardRestore(target)
        try:
            out = self._manager.restore(step, args=args.Composite(**items))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"the checkpoint at step {step} in {self.directory} does not match "
                             f"this model and optimizer: {err}") from err
        want = jax.tree.map(lambda x: (tuple(x.shape), np.dtype(x.dtype).name), target)
        for name in ("state", "best") if has_best else ("state",):
            got = jax.tree.map(lambda x: (tuple(np.shape(x)), np.asarray(x).dtype.name),
                               out[name])
            if got != want:
                raise ValueError(f"the checkpoint at step {step} in {self.directory} does not "
                                 f"match this model and optimizer: saved {got}, expected {want}")
        best_state = from_savable(out["best"], template) if has_best else None
        return from_savable(out["state"], template), best_state, dict(out["record"])

    def close(self) -> None:
        self._manager.close()
