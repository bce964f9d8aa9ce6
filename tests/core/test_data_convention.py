"""The data convention: labelled arrays, dimension validation, lossless atomic netCDF."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainmodels import data
from brainmodels._io import atomic_path


def _example_dataset(rng) -> xr.Dataset:
    betas = rng.standard_normal((6, 5)).astype(np.float32)
    return xr.Dataset(
        {
            "betas": (("trial", "voxel"), betas),
            "signal": (("stimulus", "voxel"), rng.standard_normal((3, 5))),  # float64 kept
            "responsive": (("voxel",), np.array([True, False, True, True, False])),
            "stimulus_id": (("trial",), np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)),
        },
        coords={
            "roi": ("voxel", np.array(["V1", "V1", "V2", "face", "none"])),
            "i": ("voxel", np.arange(5, dtype=np.int16)),
            "category": ("stimulus", np.array(["face", "house", "grating"])),
        },
        attrs=data.provenance(
            "test", params={"alpha": np.float32(0.5), "shape": (3, 4)}, seed=3,
            units={"betas": "% signal change"}, affine=np.eye(4).tolist(), flag=True, empty=None,
        ),
    )


def test_netcdf_round_trip_is_lossless(tmp_path, rng):
    ds = _example_dataset(rng)
    path = data.save_netcdf(ds, tmp_path / "ds.nc")
    back = data.load_netcdf(path)
    xr.testing.assert_identical(back, ds)
    for name in ds.variables:  # dtypes survive exactly (float32 stays float32, bool stays bool)
        assert back[name].dtype == ds[name].dtype, name
    assert back.attrs["params"] == {"alpha": 0.5, "shape": [3, 4]}
    assert back.attrs["flag"] is True and back.attrs["empty"] is None


def test_dataarray_round_trip(tmp_path, rng):
    da = data.as_dataarray(
        rng.standard_normal((4, 3)).astype(np.float32), ("stimulus", "feature"),
        coords={"stimulus": [10, 11, 12, 13]}, name="features", attrs={"units": "a.u."},
    )
    back = data.load_netcdf(data.save_netcdf(da, tmp_path / "da.nc"))
    assert isinstance(back, xr.DataArray)
    xr.testing.assert_identical(back, da)
    unnamed = da.rename(None)
    xr.testing.assert_identical(data.load_netcdf(data.save_netcdf(unnamed, tmp_path / "u.nc")), unnamed)


def test_as_dataarray_validates_rank_and_names():
    with pytest.raises(ValueError, match=r"must have 2 dimension\(s\)"):
        data.as_dataarray(np.zeros(3), ("stimulus", "voxel"))
    with pytest.raises(ValueError, match="unknown dimension name.*'stimuli'"):
        data.as_dataarray(np.zeros((3, 2)), ("stimuli", "voxel"))
    da = data.as_dataarray(np.zeros((3, 2)), ("stimuli", "voxel"), extra_dims=["stimuli"])
    assert da.dims == ("stimuli", "voxel")
    with pytest.raises(ValueError, match=r"must have dimension\(s\) \['voxel'\]"):
        data.validate_dims(xr.DataArray(np.zeros(3), dims=["time"]), required=["voxel"])


def test_unwrap_and_conversions(rng):
    x = rng.standard_normal((3, 2))
    values, template = data.unwrap(x)
    assert template is None and values is x
    da = xr.DataArray(x, dims=("stimulus", "voxel"))
    values, template = data.unwrap(da)
    assert template is da
    np.testing.assert_array_equal(values, x)
    assert str(data.to_jax(da).dtype) == "float32"  # JAX default precision unless x64 is on
    with pytest.raises(TypeError, match="got an xarray.Dataset"):
        data.to_numpy(xr.Dataset())


def test_complex_values_are_refused_before_writing(tmp_path):
    ds = xr.Dataset({"z": (("time",), np.ones(3, dtype=complex))})
    with pytest.raises(TypeError, match="complex"):
        data.save_netcdf(ds, tmp_path / "z.nc")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        data.load_netcdf(tmp_path / "nope.nc")


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    dest = tmp_path / "perm.txt"
    with atomic_path(dest) as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (dest.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_attributes_are_parsed_as_json_only(tmp_path):
    """An attribute that looks like code comes back as the plain string and runs nothing."""
    marker = tmp_path / "marker"
    code = f"__import__('os').system('touch {marker}')"
    attrs = {"plain": code, "prefixed": "__json__:" + code, "deep": "__json__:" + "[" * 100_000,
             "ok": {"a": [1, 2]}}
    back = data.load_netcdf(data.save_netcdf(xr.DataArray(np.zeros(2), dims="voxel", attrs=attrs),
                                             tmp_path / "a.nc"))
    assert back.attrs == attrs and not marker.exists()
