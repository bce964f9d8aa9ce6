"""End to end on the synthetic dataset: ground-truth features reach the known noise ceiling."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from brainmodels.data import load_netcdf, save_netcdf


@pytest.fixture(scope="module")
def synthetic():
    from brainmodels.datasets import make_synthetic_fmri

    ds = make_synthetic_fmri(n_stimuli=1000, n_repeats=3, resolution_mm=8.0, seed=0)
    # every responsive voxel and every 6th non-responsive one keeps the fit small (~1000 voxels)
    keep = ds["responsive"].values | (np.arange(ds.sizes["voxel"]) % 6 == 0)
    return ds.isel(voxel=np.flatnonzero(keep))


@pytest.fixture(scope="module")
def encoded(synthetic, tmp_path_factory):
    from brainmodels.cli.encode import run_encode

    out = tmp_path_factory.mktemp("encode")
    return run_encode(synthetic, ["retinotopic"], out, seed=0, verbose=False), out


def test_retinotopic_voxels_reach_the_true_noise_ceiling(synthetic, encoded):
    result, _ = encoded
    r = result["scores"]["correlation"]
    ceiling = synthetic["noise_ceiling"].values
    retino = (synthetic["roi_kind"].values == "retinotopic") & synthetic["responsive"].values
    assert retino.sum() > 100
    ratio = r[retino] / ceiling[retino]
    # issue criterion: >= 90 % of the true ceiling (held-out single-trial correlation)
    assert np.median(ratio) >= 0.9
    assert r[retino].mean() / ceiling[retino].mean() >= 0.9
    # non-responsive voxels: r ~ N(0, 1/sqrt(600 held-out trials) = 0.04) -> median ~ 0
    null = ~synthetic["responsive"].values
    assert abs(np.median(r[null])) < 0.01 and np.mean(np.abs(r[null])) < 0.05
    # the estimated (bias-corrected) ceiling tracks the true one: 3 repeats of 1000 stimuli
    est = result["scores"]["noise_ceiling"]
    assert np.median(np.abs(est[retino] - ceiling[retino])) < 0.03


def test_run_encode_table_and_files(synthetic, encoded):
    result, out = encoded
    rows = {row["roi"]: row for row in result["rows"]}
    assert rows["V1"]["above_chance"] > 0.95 and rows["V1"]["median_r/ceiling"] > 0.9
    # chance = one-sided t-test + BH-FDR 5 %: few null voxels pass
    assert rows["none"]["above_chance"] < 0.05
    names = {p.name for p in result["files"]}
    assert {"model.nc", "scores.nc", "roi_table.csv", "correlation.png", "correlation_surface.png",
            "correlation.nii.gz", "normalized_score.nii.gz", "log10_alpha.nii.gz"} <= names
    model = load_netcdf(out / "model.nc")
    assert model["coef"].dims == ("feature", "voxel")
    assert model["coef"].shape == (synthetic.sizes["feature_retinotopic"], synthetic.sizes["voxel"])
    assert "roi" in model.coords and model.attrs["model"] == "RidgeEncoder"
    scores = load_netcdf(out / "scores.nc")
    np.testing.assert_allclose(scores["correlation"].values, result["scores"]["correlation"])
    import nibabel as nib

    img = nib.load(out / "correlation.nii.gz")
    assert img.shape == tuple(synthetic.attrs["volume_shape"])


def test_cli_on_a_saved_dataset(synthetic, tmp_path):
    from brainmodels.cli import main

    small = synthetic.isel(voxel=slice(0, 400))
    path = save_netcdf(small, tmp_path / "small.nc")
    rc = main(["encode", "--data", str(path), "--features", "category", "--cv", "5",
               "--alphas=-1,3,5", "--no-maps", "--out", str(tmp_path / "out")])
    assert rc == 0
    assert (tmp_path / "out" / "model.nc").exists() and (tmp_path / "out" / "roi_table.csv").exists()
    assert main(["encode", "--data", str(path), "--features", "nope", "--out",
                 str(tmp_path / "bad")]) == 2  # a clear error, no traceback
    assert not (tmp_path / "bad").exists()  # all or nothing: not even the folder


def test_encode_help_does_not_import_jax():
    code = ("import sys; from brainmodels.cli import encode; import argparse; "
            "p = argparse.ArgumentParser(); encode.register(p.add_subparsers()); "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def banded(synthetic, tmp_path_factory):
    from brainmodels.cli.encode import run_encode

    out = tmp_path_factory.mktemp("encode_banded")
    result = run_encode(synthetic, ["retinotopic", "category"], out, cv=3, n_iter=8,
                        alphas=np.logspace(-1, 4, 11), seed=0, banded=True, verbose=False)
    return result, out


def test_banded_encode_attributes_each_roi_to_its_feature_space(synthetic, banded):
    """The synthetic brain's retinotopic ROIs are driven by the retinotopic features and its
    category ROIs by the category features: the held-out split R^2 and the band weights say so
    ROI by ROI; the split parts add up to the joint held-out R^2 of every voxel."""
    result, out = banded
    rows = {row["roi"]: row for row in result["rows"]}
    kinds = dict(zip(synthetic["roi"].values.astype(str),
                     synthetic["roi_kind"].values.astype(str), strict=True))
    print({r: (row["R2[retinotopic]"], row["R2[category]"]) for r, row in rows.items()})
    for roi, kind in kinds.items():
        if roi == "none":
            continue
        own, other = ("retinotopic", "category") if kind == "retinotopic" else \
            ("category", "retinotopic")
        assert rows[roi][f"R2[{own}]"] > 0.1 > abs(rows[roi][f"R2[{other}]"]), roi
        assert rows[roi][f"w[{own}]"] >= 0.5, roi  # median of 8 candidates; 0.5 = uniform
    s = result["scores"]
    total = s["r2_split_retinotopic"] + s["r2_split_category"]
    gap = total - s["r2"]
    print("split total - joint R^2: median", np.median(gap), "min", gap.min(), "max", gap.max())
    # the shares sum to the R^2 of the joint prediction with both centred on the held-out
    # trials; the usual R^2 is lower by n d^2 / |y|^2 (d: the prediction's mean offset), >= 0
    assert gap.min() >= -1e-5 and np.median(gap) < 0.01
    names = {p.name for p in result["files"]}
    assert {"r2_split_retinotopic.nii.gz", "r2_split_category.png"} <= names
    scores = load_netcdf(out / "scores.nc")
    assert scores["r2_split"].dims == ("feature_space", "voxel")
    assert list(scores["feature_space"].values) == ["retinotopic", "category"]
    model = load_netcdf(out / "model.nc")
    assert model.attrs["model"] == "BandedRidgeEncoder"
    assert model["band_weights"].dims == ("feature_space", "voxel")


def test_cli_banded_on_a_local_dask_cluster_equals_one_process(synthetic, tmp_path):
    """``--scheduler local:2`` fits the voxel chunks on two worker processes: the written model
    is the single-process one (each voxel's choice depends on that voxel alone)."""
    from brainmodels.cli import main

    small = synthetic.isel(voxel=slice(0, 300))
    path = save_netcdf(small, tmp_path / "small.nc")
    common = ["encode", "--data", str(path), "--features", "retinotopic,category", "--banded",
              "--cv", "3", "--n-iter", "4", "--alphas=-1,3,5", "--no-maps"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--scheduler", "local:2", "--voxel-chunk", "120",
                 "--out", str(tmp_path / "cluster")]) == 0
    one, cluster = (load_netcdf(tmp_path / d / "model.nc") for d in ("one", "cluster"))
    np.testing.assert_array_equal(one["band_weights"].values, cluster["band_weights"].values)
    np.testing.assert_array_equal(one["alphas"].values, cluster["alphas"].values)
    # the same jitted solver on 120-voxel chunks instead of one batch: float32 round-off
    np.testing.assert_allclose(one["coef"].values, cluster["coef"].values, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["--scheduler", "local:2"], "add --banded"),
    (["--banded", "--cv", "loo"], "pass --cv K"),
    (["--banded", "--cv", "3", "--features", "category"], "two or more feature spaces"),
])
def test_cli_banded_arguments_are_checked_before_any_work(tmp_path, capsys, argv, message):
    from brainmodels.cli import main

    base = ["encode", "--features", "retinotopic,category", "--out", str(tmp_path / "o")]
    assert main([*base, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["local:0", "local:x", "myhost"])
def test_cli_scheduler_is_parsed(value, capsys):
    from brainmodels.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["encode", "--banded", "--scheduler", value])
    assert exc.value.code == 2 and "--scheduler" in capsys.readouterr().err
