"""load_nifti_betas: round trips through NIfTI files written here, and bad inputs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainmodels.datasets import load_nifti_betas, make_synthetic_fmri

AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])
AFFINE[:3, 3] = [-9.0, -12.0, -6.0]


@pytest.fixture
def files(tmp_path, rng):
    shape = (6, 7, 5)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[1:5, 2:6, 1:4] = 1
    mask[0, 0, 0] = 1
    data = rng.standard_normal((*shape, 30)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, AFFINE), tmp_path / "betas.nii.gz")
    nib.save(nib.Nifti1Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    ids = rng.permutation(np.repeat(np.arange(10), 3))
    pd.DataFrame({"stimulus_id": ids, "run": np.repeat([1, 2, 3], 10)}).to_csv(
        tmp_path / "order.tsv", sep="\t", index=False)
    return tmp_path, data, mask, ids


def test_round_trip(files):
    path, data, mask, ids = files
    ds = load_nifti_betas(path / "betas.nii.gz", path / "order.tsv", path / "mask.nii.gz")
    ijk = np.argwhere(mask > 0)
    np.testing.assert_array_equal(np.stack([ds.i, ds.j, ds.k], 1), ijk)
    np.testing.assert_array_equal(ds.betas.values, data[ijk[:, 0], ijk[:, 1], ijk[:, 2]].T)
    np.testing.assert_array_equal(ds.stimulus_id.values, ids)
    np.testing.assert_array_equal(ds.run.values, np.repeat([1, 2, 3], 10))
    np.testing.assert_allclose(ds.x.values, ijk[:, 0] * 3.0 - 9.0)
    assert ds.attrs["volume_shape"] == [6, 7, 5]


def test_sessions_scale_and_rois(files):
    path, data, mask, ids = files
    half = [nib.Nifti1Image(data[..., :15], AFFINE), nib.Nifti1Image(data[..., 15:], AFFINE)]
    labels = np.zeros(mask.shape, dtype=np.int16)
    labels[1:3] = 1
    ds = load_nifti_betas(half, ids, path / "mask.nii.gz", scale=0.5, runs=np.arange(30) // 10,
                          roi_img=nib.Nifti1Image(labels, AFFINE), roi_labels={1: "V1"})
    ijk = np.argwhere(mask > 0)
    np.testing.assert_allclose(ds.betas.values, 0.5 * data[ijk[:, 0], ijk[:, 1], ijk[:, 2]].T)
    np.testing.assert_array_equal(ds.roi.values == "V1", np.isin(ijk[:, 0], [1, 2]))


def test_synthetic_dataset_round_trip(tmp_path):
    """Write a synthetic dataset's betas into the MNI volume and read them back."""
    ds = make_synthetic_fmri(30, 2, resolution_mm=10, seed=1)
    shape = tuple(ds.attrs["volume_shape"])
    vol = np.zeros((*shape, ds.sizes["trial"]), dtype=np.float32)
    vol[ds.i, ds.j, ds.k] = ds.betas.values.T
    affine = np.asarray(ds.attrs["affine"])
    mask = np.zeros(shape, dtype=np.uint8)
    mask[ds.i, ds.j, ds.k] = 1
    out = load_nifti_betas(nib.Nifti1Image(vol, affine), ds.stimulus_id.values,
                           nib.Nifti1Image(mask, affine))
    np.testing.assert_array_equal(out.betas.values, ds.betas.values)
    for c in "ijkxyz":
        np.testing.assert_allclose(out[c].values, ds[c].values)


def test_missing_file(files):
    path, *_ = files
    with pytest.raises(FileNotFoundError, match="nope.nii.gz"):
        load_nifti_betas(path / "nope.nii.gz", path / "order.tsv", path / "mask.nii.gz")
    with pytest.raises(FileNotFoundError, match="nomask"):
        load_nifti_betas(path / "betas.nii.gz", path / "order.tsv", path / "nomask.nii")


def test_mismatched_trials(files):
    path, _, _, ids = files
    with pytest.raises(ValueError, match=r"stimulus_order lists 29 .* betas_img has 30"):
        load_nifti_betas(path / "betas.nii.gz", ids[:29], path / "mask.nii.gz")
    with pytest.raises(ValueError, match="runs lists 3"):
        load_nifti_betas(path / "betas.nii.gz", ids, path / "mask.nii.gz", runs=[1, 2, 3])
    with pytest.raises(ValueError, match="no column 'image'"):
        load_nifti_betas(path / "betas.nii.gz", path / "order.tsv", path / "mask.nii.gz",
                         stimulus_column="image")


def test_bad_voxels(files):
    path, data, mask, ids = files
    data = data.copy()
    data[1, 2, 1, 4] = np.nan  # first in-mask voxel after (0, 0, 0) -> index 1
    data[4, 5, 3, :] = 2.0  # constant: the last mask voxel
    img = nib.Nifti1Image(data, AFFINE)
    with pytest.raises(ValueError, match=r"1 voxel\(s\) with NaN/inf values \(indices \[1\]\)"):
        load_nifti_betas(img, ids, path / "mask.nii.gz")
    with pytest.raises(ValueError, match="zero variance"):
        load_nifti_betas(img, ids, path / "mask.nii.gz")
    ds = load_nifti_betas(img, ids, path / "mask.nii.gz", on_bad_voxels="drop")
    assert ds.sizes["voxel"] == mask.sum() - 2 and ds.attrs["n_dropped_voxels"] == 2
    assert np.isfinite(ds.betas.values).all()


def test_empty_mask_and_wrong_grid(files):
    path, data, mask, ids = files
    nib.save(nib.Nifti1Image(np.zeros_like(mask), AFFINE), path / "empty.nii.gz")
    with pytest.raises(ValueError, match=r"mask_img .*empty.nii.gz.* is empty"):
        load_nifti_betas(path / "betas.nii.gz", ids, path / "empty.nii.gz")
    small = nib.Nifti1Image(np.ones((3, 3, 3), dtype=np.uint8), AFFINE)
    with pytest.raises(ValueError, match="grid"):
        load_nifti_betas(path / "betas.nii.gz", ids, small)
    with pytest.raises(ValueError, match="4D"):
        load_nifti_betas(nib.Nifti1Image(data[..., 0], AFFINE), ids[:1], path / "mask.nii.gz")
