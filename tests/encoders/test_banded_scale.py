"""BandedRidgeEncoder at scale: JAX devices, dask-backed targets, a dask LocalCluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import xarray as xr

from brainmodels.encoders import BandedRidgeEncoder

ALPHAS = np.logspace(-2, 5, 8)


def _data(n=150, p=(5, 20), v=64, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p[0])).astype(np.float32)
    B = rng.standard_normal((n, p[1])).astype(np.float32)
    Y = (np.concatenate([A, B], 1) @ rng.standard_normal((sum(p), v))
         + 3 * rng.standard_normal((n, v))).astype(np.float32)
    return A, B, Y


def _same(a, b):
    """Same choices; numbers to float32 tolerance: a chunk's voxel batches have other widths
    than the whole fit's, so XLA may sum in another order (a few ulp)."""
    for name in ("alphas_", "band_weights_"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)),
                                      err_msg=name)
    for name in ("coef_", "intercept_", "best_cv_scores_"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        np.testing.assert_allclose(x, y, rtol=0, atol=32 * np.finfo(np.float32).eps
                                   * np.abs(y).max(), err_msg=name)


def test_voxel_batches_shard_over_eight_devices_with_identical_results():
    """XLA's host platform split into 8 devices (the flag must precede jax's import, hence a
    subprocess): each device computes its columns as it would alone, so results are equal to
    the last bit."""
    code = textwrap.dedent("""
        import numpy as np, jax
        assert len(jax.devices()) == 8, jax.devices()
        from brainmodels.encoders import BandedRidgeEncoder
        rng = np.random.default_rng(0)
        # 400 x 400: above the host path's design size, so both fits run the jitted kernels
        A = rng.standard_normal((400, 150)).astype(np.float32)
        B = rng.standard_normal((400, 250)).astype(np.float32)
        Y = (np.concatenate([A, B], 1) @ rng.standard_normal((400, 100)) / 20
             + rng.standard_normal((400, 100))).astype(np.float32)
        kw = dict(alphas=np.logspace(-2, 4, 7), n_iter=4, voxel_batch=8, cv=4)
        many = BandedRidgeEncoder(**kw).fit([A, B], Y)
        one = BandedRidgeEncoder(devices=1, **kw).fit([A, B], Y)
        for name in ("coef_", "alphas_", "band_weights_", "best_cv_scores_"):
            np.testing.assert_array_equal(getattr(many, name), getattr(one, name), name)
        loo = BandedRidgeEncoder(**{**kw, "cv": "loo"}).fit([A, B], Y)
        loo1 = BandedRidgeEncoder(devices=1, **{**kw, "cv": "loo"}).fit([A, B], Y)
        np.testing.assert_array_equal(loo.coef_, loo1.coef_)
        print("ok", len(jax.devices()))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok 8" in out.stdout


def test_dask_backed_targets_stream_by_chunks(tmp_path):
    """Y opened lazily from netCDF with voxel chunks: the fit reads one chunk at a time and
    gives the in-memory fit's numbers."""
    pytest.importorskip("dask")
    A, B, Y = _data()
    path = tmp_path / "betas.nc"
    xr.DataArray(Y, dims=("stimulus", "voxel"), name="betas").to_netcdf(path,
                                                                         engine="h5netcdf")
    kw = dict(alphas=ALPHAS, n_iter=4, cv=5)
    ref = BandedRidgeEncoder(**kw).fit([A, B], xr.DataArray(Y, dims=("stimulus", "voxel")))
    with xr.open_dataarray(path, engine="h5netcdf", chunks={"voxel": 20}) as lazy:
        assert lazy.chunks is not None
        seen = []
        enc = BandedRidgeEncoder(**kw).fit([A, B], lazy, progress=lambda it: (
            seen.append(c) or c for c in it))
    assert len(seen) == 4  # 64 voxels in chunks of 20
    _same(enc, ref)
    bad = Y.copy()
    bad[3, 45] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\) in voxel\(s\) \[45\]"):
        BandedRidgeEncoder(**kw).fit([A, B], xr.DataArray(bad, dims=("stimulus", "voxel")
                                                          ).chunk({"voxel": 20}))
    with pytest.raises(ValueError, match="per_voxel=False"):
        BandedRidgeEncoder(per_voxel=False, **kw).fit([A, B], Y, voxel_chunk=10)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_store_is_written_chunk_by_chunk_and_equals_the_in_memory_model(tmp_path,
                                                                        fit_intercept):
    """``store=`` writes the model into a netCDF file as the voxel chunks finish: the file holds
    what to_dataset() holds (same variables, dtypes, coordinates, provenance), coef_ is read
    from it lazily, and predict/score from the store equal the in-memory model's."""
    from brainmodels.data import load_netcdf

    A, B, Y = _data(v=70)
    Yl = xr.DataArray(Y, dims=("stimulus", "voxel"),
                      coords={"roi": ("voxel", np.repeat(["V1", "FFA"], 35))})
    kw = dict(alphas=ALPHAS, n_iter=4, cv=5, fit_intercept=fit_intercept)
    ref = BandedRidgeEncoder(**kw).fit({"a": A, "b": B}, Yl)
    seen = []
    enc = BandedRidgeEncoder(**kw).fit({"a": A, "b": B}, Yl, store=tmp_path / "model.nc",
                                       voxel_chunk=16,
                                       progress=lambda it: (seen.append(c) or c for c in it))
    assert len(seen) == 5  # 70 voxels in chunks of 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nc"]  # no temporary left
    _same(enc, ref)
    assert not enc.coef_.variable._in_memory  # read on access, never pinned in memory
    want, got = ref.to_dataset(), load_netcdf(tmp_path / "model.nc")
    assert set(want.variables) == set(got.variables)
    for name in want.variables:
        assert want[name].dims == got[name].dims and want[name].dtype == got[name].dtype, name
        if want[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name].values, want[name].values, rtol=0,
                                       atol=32 * np.finfo(np.float32).eps
                                       * max(1.0, np.abs(want[name].values[
                                           np.isfinite(want[name].values)]).max()),
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert got.attrs["model"] == "BandedRidgeEncoder" and got.attrs["params"] == \
        want.attrs["params"]
    Xt = {"a": A[:40], "b": B[:40]}
    np.testing.assert_allclose(enc.predict(Xt), ref.predict(Xt), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(enc.score(Xt, Yl[:40], split=True),
                               ref.score(Xt, Yl[:40], split=True), rtol=1e-4, atol=1e-6)


def test_a_failed_fit_leaves_no_store_and_keeps_an_existing_file(tmp_path):
    """A bad chunk (NaN in voxel 45, the third chunk) stops the fit after two chunks were
    written: the store is removed, and the file already at the destination is left as it was;
    a bad store path is refused before any work."""
    A, B, Y = _data()
    dest = tmp_path / "model.nc"
    dest.write_bytes(b"the user's previous model")
    bad = Y.copy()
    bad[3, 45] = np.nan
    with pytest.raises(ValueError, match=r"voxel\(s\) \[45\]"):
        BandedRidgeEncoder(alphas=ALPHAS, n_iter=3).fit([A, B], bad, store=dest,
                                                         voxel_chunk=20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nc"]
    assert dest.read_bytes() == b"the user's previous model"
    (tmp_path / "d.nc").mkdir()
    for store, message in ((tmp_path / "model.zarr", r"\.nc"), (tmp_path / "d.nc", "folder"),
                           (tmp_path / "nope" / "m.nc", "does not exist")):
        with pytest.raises(ValueError, match=message):
            BandedRidgeEncoder(alphas=ALPHAS, n_iter=3).fit([A, B], Y, store=store)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as lc, \
            distributed.Client(lc) as client:
        yield lc, client


def test_local_cluster_fit_equals_single_process(cluster, tmp_path):
    _, client = cluster
    A, B, Y = _data(v=90)
    kw = dict(alphas=ALPHAS, n_iter=5, cv=5)
    ref = BandedRidgeEncoder(**kw).fit({"a": A, "b": B}, Y)
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        enc = BandedRidgeEncoder(**kw).fit({"a": A, "b": B}, Y, client=client, voxel_chunk=25)
    _same(enc, ref)
    # chunks gathered one by one into a store: the same model
    stored = BandedRidgeEncoder(**kw).fit({"a": A, "b": B}, Y, client=client, voxel_chunk=25,
                                          store=tmp_path / "m.nc")
    _same(stored, ref)
    # the four chunks ran as tasks on the cluster's workers
    jobs = [t for t in stream.data if t["key"].startswith("_call_job")]
    assert len(jobs) == 4
    Yc = Y.copy()
    Yc[:, 70] = 1.0
    with pytest.raises(ValueError, match=r"zero variance \(indices \[70\]\)"):
        BandedRidgeEncoder(**kw).fit([A, B], Yc, client=client, voxel_chunk=25)


def test_worker_killed_mid_fit_is_retried_and_the_result_complete(cluster):
    lc, client = cluster
    A, B, Y = _data(n=300, p=(10, 60), v=300, seed=2)
    kw = dict(alphas=ALPHAS, n_iter=6, cv=5)
    ref = BandedRidgeEncoder(**kw).fit([A, B], Y)
    box = {}

    def run():
        try:
            box["enc"] = BandedRidgeEncoder(**kw).fit([A, B], Y, client=client, voxel_chunk=25)
        except BaseException as err:  # pragma: no cover - reported below
            box["err"] = err

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        busy = {w: ts for w, ts in client.processing().items() if ts}
        if busy:
            victim = next(iter(busy))
        time.sleep(0.05)
    assert victim is not None, "no chunk started on the cluster"
    # kill the worker process outright (as an out-of-memory kill would); its nanny restarts it
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert "err" not in box, box.get("err")
    _same(box["enc"], ref)
