"""`brainmodels data synthetic` / `data info`, and the lossless netCDF round trip."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

from brainmodels._io import read_manifest
from brainmodels.cli import main
from brainmodels.data import load_netcdf, save_netcdf
from brainmodels.datasets import describe, detect_format, make_synthetic_fmri


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    rc = main(["data", "synthetic", "--n-stimuli", "30", "--resolution", "10", "--seed", "2",
               "--out", str(out)])
    assert rc == 0
    return out


def test_synthetic_command_writes_dataset(written):
    ds = load_netcdf(written / "synthetic_fmri.nc")
    ref = make_synthetic_fmri(30, 3, resolution_mm=10, seed=2)
    xr.testing.assert_equal(ds, ref)  # values, dtypes-compatible, coords
    mask = nib.load(written / "synthetic_fmri_mask.nii.gz")
    np.testing.assert_array_equal(mask.affine, np.asarray(ref.attrs["affine"]))
    vol = np.asarray(mask.dataobj)
    assert vol.sum() == ref.sizes["voxel"] and vol[ref.i, ref.j, ref.k].all()
    labels = np.asarray(nib.load(written / "synthetic_fmri_rois.nii.gz").dataobj)
    table = dict(line.split("\t")[:2] for line in
                 (written / "synthetic_fmri_rois.tsv").read_text().splitlines()[1:])
    assert table["1"] == "V1"
    names = np.array([table.get(str(int(v)), "none") for v in labels[ref.i, ref.j, ref.k]])
    np.testing.assert_array_equal(names, ref.roi.values)
    assert not list(written.glob(".*tmp*"))  # no temp files left behind
    manifest = read_manifest(written)  # the folder was written as a whole, manifest last
    assert {f["path"] for f in manifest["files"]} == {
        "synthetic_fmri.nc", "synthetic_fmri_mask.nii.gz", "synthetic_fmri_rois.nii.gz",
        "synthetic_fmri_rois.tsv"}
    assert manifest["command"][:3] == ["brainmodels", "data", "synthetic"]


def test_netcdf_round_trip_is_lossless(tmp_path):
    ds = make_synthetic_fmri(20, 2, resolution_mm=10, seed=5)
    back = load_netcdf(save_netcdf(ds, tmp_path / "ds.nc"))
    xr.testing.assert_identical(back, ds)
    for name in ("betas", "signal", "images", "noise_sd"):
        assert back[name].dtype == np.float32
    assert back.responsive.dtype == bool and back.roi.dtype.kind == "U"


def test_info_on_every_format(written, tmp_path, capsys):
    assert detect_format(written / "synthetic_fmri.nc") == "netcdf"
    assert main(["data", "info", str(written / "synthetic_fmri.nc")]) == 0
    out = capsys.readouterr().out
    assert "repeats per stimulus: [3]" in out and "V1" in out and "make_synthetic_fmri" in out
    assert main(["data", "info", "--ceiling", str(written / "synthetic_fmri.nc")]) == 0
    assert "median ceiling from repeats" in capsys.readouterr().out
    assert detect_format(written / "synthetic_fmri_mask.nii.gz") == "nifti"
    # a minimal Algonauts folder and a minimal BIDS folder
    fmri = tmp_path / "alg" / "subj01" / "training_split" / "training_fmri"
    fmri.mkdir(parents=True)
    (fmri.parent / "training_images").mkdir()
    np.save(fmri / "lh_training_fmri.npy", np.zeros((4, 7), np.float32))
    np.save(fmri / "rh_training_fmri.npy", np.zeros((4, 5), np.float32))
    assert detect_format(tmp_path / "alg") == "algonauts2023"
    assert "lh (4, 7), rh (4, 5)" in describe(tmp_path / "alg")
    func = tmp_path / "bids" / "sub-01" / "func"
    func.mkdir(parents=True)
    (tmp_path / "bids" / "dataset_description.json").write_text(json.dumps({"Name": "t"}))
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)),
             func / "sub-01_task-a_run-1_bold.nii.gz")
    assert detect_format(tmp_path / "bids") == "bids"
    summary = describe(tmp_path / "bids")
    assert "runs" in summary and "with_events" in summary
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(ValueError, match="not a supported dataset"):
        detect_format(tmp_path / "junk.txt")


def test_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["data", "synthetic", "--n-stimuli", "1", "--resolution", "10",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "n_stimuli must be" in err and f"no output was written ({out} was not created)" in err
    assert not out.exists()
    assert main(["data", "info", str(tmp_path / "missing.nc")]) == 2
    assert "not found" in capsys.readouterr().err
