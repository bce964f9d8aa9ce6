"""Banded ridge at scale: voxel chunks (from a dask-backed ``Y``, here or on a dask cluster)
and the model store written chunk by chunk (``BandedRidgeEncoder.fit(store=)``).

Every voxel's choice depends on that voxel alone, so chunks give the numbers of one fit of all
voxels; these helpers only decide which voxels go together, where they run and where their
results are written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from brainmodels.encoders.banded import _BlockJob

# ----------------------------------------------------------------------------- voxel chunks


def _lazy_targets(Y):
    """``(dask array (sample, voxel), template, False)`` for a dask-backed DataArray ``Y``."""
    if not isinstance(Y, xr.DataArray) or Y.chunks is None:
        return None
    if Y.ndim != 2 or "voxel" not in Y.dims:
        raise ValueError(f"a dask-backed Y must be a 2-D DataArray with a 'voxel' dimension, "
                         f"got dims {Y.dims}")
    if Y.dims[0] == "voxel":
        Y = Y.transpose(Y.dims[1], "voxel")
    return Y.data, Y, False


def _voxel_chunks(v: int, voxel_chunk, lazy, client) -> list[slice]:
    if voxel_chunk is not None:
        size = int(voxel_chunk)
        if size < 1:
            raise ValueError(f"voxel_chunk must be a positive int, got {voxel_chunk!r}")
    elif lazy is not None:
        edges = np.concatenate([[0], np.cumsum(lazy[0].chunks[1])])
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    else:
        workers = max(1, len(client.scheduler_info().get("workers", {}))) if client else 1
        size = max(1, -(-v // (2 * workers)))
    return [slice(a, min(a + size, v)) for a in range(0, v, size)]


def _run_chunks(job: _BlockJob, Y, chunks: list[slice], *, client, progress, sink=None):
    """Run ``job`` on every voxel chunk (here, or on ``client``'s workers) and join. With
    ``sink``, each chunk's result is handed to ``sink(part, slice)`` as it arrives and only
    what the sink returns (the small per-voxel arrays) is kept."""
    keep = (lambda part, sl: part) if sink is None else sink
    if client is None:
        it = chunks if progress is None else progress(chunks)
        parts = [keep(job(np.asarray(Y[:, sl]), sl.start), sl) for sl in it]
    else:
        # Inputs travel inside the task specs (not scattered): whatever a dead worker held
        # can be recomputed by the scheduler, so a killed worker costs time, not the result.
        remote = client.submit(_identity, job, pure=False)
        futures = []
        for sl in chunks:
            block = Y[:, sl]
            # dask's collection protocol (no dask import: it comes with the client's install)
            data = client.compute(block) if hasattr(block, "__dask_graph__") else \
                client.submit(_identity, np.asarray(block), pure=False)
            futures.append(client.submit(_call_job, remote, data, sl.start, retries=3,
                                         pure=False))
        parts = []
        pairs = list(zip(futures, chunks, strict=True))
        for future, sl in (pairs if progress is None else progress(pairs)):
            parts.append(keep(future.result(), sl))  # in order; each gathered once
            future.release()
    return {k: np.concatenate([r[k] for r in parts], axis=-1) for k in parts[0]}


def _identity(x):
    return x


def _call_job(job: _BlockJob, Y, offset: int) -> dict[str, np.ndarray]:
    return job(Y, offset)


# ----------------------------------------------------------------------------- the store


def _per_voxel(coef, intercept, alphas, gamma, band_alphas, cv, best_cv):
    """(name, dims, values) of the fitted per-voxel variables, in :meth:`to_dataset` order."""
    return [("coef", ("feature", "voxel"), coef), ("intercept", ("voxel",), intercept),
            ("alphas", ("voxel",), alphas), ("band_weights", ("feature_space", "voxel"), gamma),
            ("band_alphas", ("feature_space", "voxel"), band_alphas),
            ("cv_scores", ("candidate", "voxel"), cv), ("best_cv_scores", ("voxel",), best_cv)]


def _check_store(store) -> Path:
    path = Path(store)
    if path.is_dir():
        raise ValueError(f"store {str(store)!r} is a folder; give a file path ending in .nc")
    if path.suffix != ".nc":
        raise ValueError(f"store must be the path of a .nc (netCDF) file, got {str(store)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"store {str(store)!r}: the folder {str(path.parent)!r} does not exist")
    return path


class _ModelStore:
    """The fitted model written into a netCDF file one voxel chunk at a time.

    The per-voxel variables are written with h5netcdf as the chunks arrive (HDF5 chunks of one
    voxel chunk, so a later read of a voxel range touches only its chunks); the coordinates,
    candidates and provenance are appended by xarray when the fit is complete, and only then is
    the temporary file renamed to the destination.
    """

    def __init__(self, path: Path, *, p, v, m, n_cands, dtype, chunk, x_mean, fit_intercept):
        from brainmodels._deps import require

        h5netcdf = require("h5netcdf", purpose="BandedRidgeEncoder.fit(store=)")
        self.path, self.x_mean, self.dtype = path, np.asarray(x_mean), np.dtype(dtype)
        self.fit_intercept = fit_intercept
        self.chunk = max(1, min(int(chunk), v))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.nc", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.file = h5netcdf.File(self.tmp, "w")
        self.file.dimensions = {"feature": p, "voxel": v, "feature_space": m,
                                "candidate": n_cands}
        self.vars = {}
        shapes = {"feature": p, "voxel": v, "feature_space": m, "candidate": n_cands}
        for name, dims, _ in _per_voxel(*[None] * 7):
            dt = self.dtype if name in ("coef", "intercept") else np.float64
            chunks = tuple(self.chunk if d == "voxel" else shapes[d] for d in dims)
            self.vars[name] = self.file.create_variable(name, dims, dt, chunks=chunks)

    def write(self, part: dict, sl: slice) -> dict:
        coef = part["coef"]
        y_mean = part["y_mean"] if self.fit_intercept else np.zeros(coef.shape[1])
        intercept = (y_mean - self.x_mean @ coef).astype(self.dtype)  # as _store computes it
        gamma, alphas = part["gamma"], part["alphas"]
        band_alphas = np.where(gamma > 0, alphas[None, :] / np.where(gamma > 0, gamma, 1.0),
                               np.inf)
        for name, _, values in _per_voxel(coef, intercept, alphas, gamma, band_alphas,
                                          part["cv"], part["best_cv"]):
            self.vars[name][..., sl] = values
        return {**{k: a for k, a in part.items() if k != "coef"}, "intercept": intercept}

    def finish(self, metadata: xr.Dataset) -> None:
        from brainmodels.data import _encode_attrs

        self.file.close()
        meta = metadata.copy()
        meta.attrs = {**_encode_attrs(meta.attrs, "the model"),
                      "_brainmodels_kind": "Dataset"}
        meta.to_netcdf(self.tmp, mode="a", engine="h5netcdf")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.tmp, 0o666 & ~mask)  # mkstemp made it 0600
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def _open_store(path) -> xr.Dataset:
    """A model store opened lazily (variables read on access), attributes decoded."""
    from brainmodels.data import _decode_attrs

    # cache=False: reading coef_ does not pin it in memory afterwards
    ds = xr.open_dataset(path, engine="h5netcdf", cache=False)
    ds.attrs = _decode_attrs(ds.attrs)
    ds.attrs.pop("_brainmodels_kind", None)
    return ds


class _StoredCoef:
    """The (feature, voxel) coefficients of a store, read by slices (picklable: a path)."""

    def __init__(self, path, p: int, v: int, dtype, chunk: int):
        self.path, self.shape, self.dtype = Path(path), (p, v), np.dtype(dtype)
        self.chunk = chunk

    def chunks(self) -> list[slice]:
        v = self.shape[1]
        return [slice(a, min(a + self.chunk, v)) for a in range(0, v, self.chunk)]

    def __getitem__(self, index) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f["coef"][index])
