"""Brain maps: per-voxel vectors back into the volume, NIfTI round trip, plots."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from nilearn.datasets import load_mni152_brain_mask
from nilearn.maskers import NiftiMasker

from brainmodels import brainmaps


@pytest.fixture(scope="module")
def voxels():
    mask = load_mni152_brain_mask(resolution=8)
    ijk = np.argwhere(mask.get_fdata() > 0)
    ds = xr.Dataset(
        coords={c: ("voxel", ijk[:, n]) for n, c in enumerate("ijk")},
        attrs={"affine": mask.affine.tolist(), "volume_shape": list(mask.shape)},
    )
    return ds, mask


def test_to_nifti_round_trips_through_nilearn_masker(voxels, rng):
    ds, mask = voxels
    values = rng.standard_normal(ds.sizes["voxel"]).astype(np.float32)
    img = brainmaps.to_nifti(values, ds)
    np.testing.assert_array_equal(img.affine, mask.affine)
    # nilearn's masker reads voxels in the same C order as np.argwhere: exact round trip
    back = np.ravel(NiftiMasker(brainmaps.mask_image(ds), standardize=None).fit().transform(img))
    np.testing.assert_array_equal(back, values)


def test_to_nifti_4d_and_errors(voxels, rng):
    ds, _ = voxels
    n = ds.sizes["voxel"]
    img = brainmaps.to_nifti(rng.standard_normal((3, n)), ds)
    assert img.shape == (*ds.attrs["volume_shape"], 3)
    with pytest.raises(ValueError, match=f"voxel = {n}"):
        brainmaps.to_nifti(np.zeros(n + 1), ds)
    with pytest.raises(ValueError, match="affine"):
        brainmaps.to_nifti(np.zeros(n), ds.drop_attrs())


def test_save_and_plot(voxels, tmp_path):
    import nibabel as nib

    ds, _ = voxels
    values = ds["j"].values.astype(float)
    path = brainmaps.save_nifti(brainmaps.to_nifti(values, ds), tmp_path / "map.nii.gz")
    np.testing.assert_array_equal(
        nib.load(path).get_fdata()[tuple(ds[c].values for c in "ijk")], values
    )
    for kind in ("stat", "glass"):
        fig = brainmaps.plot_brain_map(values, ds, kind=kind, output_file=tmp_path / f"{kind}.png")
        assert fig is not None and (tmp_path / f"{kind}.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="kind must be one of"):
        brainmaps.plot_brain_map(values, ds, kind="surface")
    with pytest.raises(ValueError, match=r"\.nii"):
        brainmaps.save_nifti(brainmaps.mask_image(ds), tmp_path / "map.png")


def test_surface_projection_keeps_hemisphere_and_sign(voxels, tmp_path):
    """A map of +1 in the right hemisphere and -1 in the left lands on fsaverage5 with the
    signs on the right sides (x > 0 is right in MNI space)."""
    import matplotlib.pyplot as plt

    ds, mask = voxels
    ijk = np.stack([ds[c].values for c in "ijk"], axis=1)
    x_mm = (mask.affine @ np.c_[ijk, np.ones(len(ijk))].T)[0]
    values = np.sign(x_mm)
    surf = brainmaps.volume_to_surface(values, ds)
    left, right = (np.asarray(surf.data.parts[h]) for h in ("left", "right"))
    assert left.shape == right.shape == (10242,)  # fsaverage5 vertices per hemisphere
    assert np.mean(left < 0) > 0.8 and np.mean(right > 0) > 0.8
    fig = brainmaps.plot_surface_map(values, ds, threshold=0.1, vmax=1.0,
                                     output_file=tmp_path / "surf.png")
    assert len([ax for ax in fig.axes if ax.name == "3d"]) == len(brainmaps.SURFACE_PANELS)
    assert (tmp_path / "surf.png").stat().st_size > 5_000
    plt.close(fig)
