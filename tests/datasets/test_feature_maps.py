"""feature_map (stimulus maps in degrees of visual angle) and the synthetic datasets' subjects.

Small real datasets (60 stimuli, 8 mm voxels): the whole file runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainmodels.datasets import (
    FIELD_OF_VIEW_DEG,
    feature_map,
    gabor_energy,
    make_synthetic_bold,
    make_synthetic_fmri,
)
from brainmodels.datasets.synthetic import _check_subject

SIZES = dict(n_stimuli=60, n_repeats=2, resolution_mm=8)


@pytest.fixture(scope="module")
def ds():
    return make_synthetic_fmri(**SIZES, seed=0)


@pytest.fixture(scope="module")
def ds1():
    return make_synthetic_fmri(**SIZES, seed=0, subject=1)


@pytest.fixture(scope="module")
def bold():
    return make_synthetic_bold(40, 2, resolution_mm=8, seed=0)


# ----------------------------------------------------------------------------- feature_map


def test_gabor_map_is_gabor_energy_before_pooling(ds):
    fmap = feature_map(ds)
    assert fmap.dims == ("stimulus", "y", "x", "channel") and fmap.dtype == np.float32
    np.testing.assert_array_equal(fmap.values, gabor_energy(ds.images.values))
    # flattening (row, col, wavelength, orientation) gives the stored features back exactly
    flat = fmap.values.reshape(fmap.sizes["stimulus"], -1)
    np.testing.assert_array_equal(flat, ds.features_retinotopic.values)
    # channels are wavelength-major, as the stored feature coords
    per_cell = ds.features_retinotopic.isel(feature_retinotopic=slice(0, fmap.sizes["channel"]))
    for c in ("wavelength_px", "orientation_deg"):
        np.testing.assert_array_equal(fmap[c].values, per_cell[c].values)
    assert fmap.attrs["kind"] == "gabor" and fmap.attrs["field_of_view_deg"] == 8.4
    assert fmap.attrs["units"] and fmap.x.attrs["units"] == "deg"
    # the result is a copy: writing to it leaves the dataset alone
    fmap.values[:] = 0
    assert float(ds.features_retinotopic.max()) > 0


def test_gabor_map_with_other_settings_is_recomputed(ds):
    fmap = feature_map(ds, grid=4, n_orientations=2, wavelengths=[6.0])
    expected = gabor_energy(ds.images.values, grid=4, n_orientations=2, wavelengths=[6.0])
    np.testing.assert_array_equal(fmap.values, expected)
    assert fmap.shape == (60, 4, 4, 2)
    np.testing.assert_array_equal(fmap.orientation_deg.values, [0.0, 90.0])
    np.testing.assert_array_equal(fmap.wavelength_px.values, [6.0, 6.0])
    # settings equal to the dataset's own read the stored features (same values)
    own = feature_map(ds, grid=8, n_orientations=4, wavelengths=(4, 8))
    xr.testing.assert_identical(own, feature_map(ds))


def test_coords_are_degrees_of_visual_angle(ds):
    fmap = feature_map(ds)
    x, y = fmap.x.values, fmap.y.values
    half = FIELD_OF_VIEW_DEG / 2
    np.testing.assert_allclose(x, -x[::-1], atol=1e-12)  # symmetric about fixation
    np.testing.assert_allclose(y, -y[::-1], atol=1e-12)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) < 0)  # x right, y up (row 0 on top)
    assert x.max() < half and x.min() > -half
    # cell centres = the features' rf_x / rf_y (image units) scaled to degrees
    first = ds.features_retinotopic.isel(feature_retinotopic=slice(0, None, fmap.sizes["channel"]))
    np.testing.assert_allclose(first.rf_x.values.reshape(8, 8) * half,
                               np.broadcast_to(x, (8, 8)), rtol=1e-12)
    np.testing.assert_allclose(first.rf_y.values.reshape(8, 8) * half,
                               np.broadcast_to(y[:, None], (8, 8)), rtol=1e-12)
    # a wider field of view stretches the axes only
    wide = feature_map(ds, field_of_view_deg=16.8)
    np.testing.assert_allclose(wide.x.values, 2 * x)
    np.testing.assert_array_equal(wide.values, fmap.values)


def test_energy_sits_where_the_stimulus_is(ds):
    fmap = feature_map(ds)
    energy = fmap.sum("channel")
    total = energy.sum(("y", "x"))
    centre_x = (energy * fmap.x).sum(("y", "x")) / total
    centre_y = (energy * fmap.y).sum(("y", "x")) / total
    px, py = ds.position_x.values, ds.position_y.values
    for centre, pos in ((centre_x, px), (centre_y, py)):
        off = np.abs(pos) > 0.25  # clearly off the vertical / horizontal meridian
        assert off.sum() > 20
        np.testing.assert_array_equal(np.sign(centre.values[off]), np.sign(pos[off]))
        assert np.corrcoef(centre.values, pos * FIELD_OF_VIEW_DEG / 2)[0, 1] > 0.9


def test_stimulus_coords_are_carried_over(ds):
    fmap = feature_map(ds)
    for c in ("stimulus", "category", "kind", "position_x", "position_y", "size", "contrast"):
        np.testing.assert_array_equal(fmap[c].values, ds[c].values)
        assert fmap[c].dims == ("stimulus",)


def test_pixel_map(ds):
    fmap = feature_map(ds, "pixels")
    assert fmap.dims == ("stimulus", "y", "x", "channel") and fmap.shape == (60, 32, 32, 1)
    assert fmap.dtype == np.float32 and fmap.attrs["kind"] == "pixels"
    np.testing.assert_array_equal(fmap.values[..., 0], ds.images.values - np.float32(0.5))
    np.testing.assert_allclose(fmap.x.values[[0, -1]], [-4.06875, 4.06875])
    np.testing.assert_allclose(fmap.y.values[[0, -1]], [4.06875, -4.06875])


def test_bold_variant_uses_its_stimulus_level_features(bold):
    fmap = feature_map(bold)
    assert fmap.sizes["stimulus"] == 40
    np.testing.assert_array_equal(fmap.values, gabor_energy(bold.images.values))
    # features only at TR resolution: no stimulus axis to read them from
    timeseries = bold.drop_vars("stimulus_features_retinotopic")
    with pytest.raises(ValueError, match="time series"):
        feature_map(timeseries)
    recomputed = feature_map(timeseries, grid=8, n_orientations=4, wavelengths=(4.0, 8.0))
    np.testing.assert_array_equal(recomputed.values, fmap.values)


def test_feature_map_errors(ds):
    with pytest.raises(ValueError, match=r"kind must be one of \['gabor', 'pixels'\]"):
        feature_map(ds, "wavelets")
    with pytest.raises(ValueError, match="no `images`"):
        feature_map(ds.drop_vars("images"), "pixels")
    with pytest.raises(ValueError, match="no `features_retinotopic`"):
        feature_map(ds.drop_vars("features_retinotopic"))
    with pytest.raises(ValueError, match="no `images`"):
        feature_map(ds.drop_vars(["images", "features_retinotopic"]), grid=4,
                    n_orientations=4, wavelengths=[4.0])
    with pytest.raises(ValueError, match="grid must be a positive integer dividing the image "
                                         "size 32, got 5"):
        feature_map(ds, grid=5)
    with pytest.raises(ValueError, match="kind='gabor' only"):
        feature_map(ds, "pixels", grid=4)
    with pytest.raises(ValueError, match="no 'stimulus' axis"):
        feature_map(ds.drop_dims("stimulus"))
    with pytest.raises(ValueError, match="field_of_view_deg must be > 0"):
        feature_map(ds, field_of_view_deg=0.0)


# ----------------------------------------------------------------------------- subjects


def test_subject_zero_is_the_default(ds):
    xr.testing.assert_identical(make_synthetic_fmri(**SIZES, seed=0, subject=0), ds)
    assert ds.attrs["subject"] == 0 and ds.attrs["params"]["subject"] == 0
    assert ds.attrs["field_of_view_deg"] == 8.4


def test_subject_zero_keeps_the_original_noise_stream(ds):
    # non-responsive voxels hold pure N(0, 1) noise, drawn in blocks of 256 trials from the
    # children of SeedSequence([seed, 7]): the stream of the datasets made before subjects
    quiet = np.flatnonzero(~ds.responsive.values)
    children = np.random.SeedSequence([0, 7]).spawn(1)
    first = np.random.default_rng(children[0]).standard_normal((120, ds.sizes["voxel"]),
                                                               dtype=np.float32)
    np.testing.assert_array_equal(ds.betas.values[:, quiet], first[:, quiet])


def test_another_subject_saw_the_same_stimuli(ds, ds1):
    for v in ("images", "features_retinotopic", "features_category", "stimulus_id", "run",
              "repeat", "session", "category", "position_x", "roi", "x", "y", "z"):
        np.testing.assert_array_equal(ds1[v].values, ds[v].values, err_msg=v)
    for v in ("weights_retinotopic", "weights_category", "signal", "noise_sd", "betas",
              "true_ev"):
        assert not np.array_equal(ds1[v].values, ds[v].values), v
    # its own noise: the non-responsive voxels (pure noise in both) differ
    quiet = ~(ds.responsive.values | ds1.responsive.values)
    assert not np.array_equal(ds1.betas.values[:, quiet], ds.betas.values[:, quiet])
    # its own pRFs (the map is anatomical, the jitter fields are the subject's), in degrees
    ret = ds.roi_kind.values == "retinotopic"
    assert np.all(ds1.prf_size_deg.values[ret] != ds.prf_size_deg.values[ret])
    inside = ret & (np.abs(ds.prf_y.values) < 1) & (np.abs(ds1.prf_y.values) < 1)  # not clipped
    assert inside.sum() > 100
    assert np.all(ds1.prf_y_deg.values[inside] != ds.prf_y_deg.values[inside])
    for sub in (ds, ds1):
        for c in ("prf_x", "prf_y", "prf_size"):
            np.testing.assert_allclose(sub[f"{c}_deg"].values, sub[c].values * 4.2)
        assert np.nanmax(np.abs(sub.prf_x_deg.values)) <= 4.2
    assert ds1.attrs["subject"] == 1 and ds1.attrs["params"]["subject"] == 1


def test_subject_is_deterministic(ds1):
    xr.testing.assert_identical(make_synthetic_fmri(**SIZES, seed=0, subject=1), ds1)
    two = make_synthetic_fmri(**SIZES, seed=0, subject=2)
    assert not np.array_equal(two.signal.values, ds1.signal.values)


def test_bold_subjects_share_the_design(bold):
    other = make_synthetic_bold(40, 2, resolution_mm=8, seed=0, subject=1)
    for v in ("images", "onset", "event_stimulus", "features_retinotopic"):
        np.testing.assert_array_equal(other[v].values, bold[v].values, err_msg=v)
    for v in ("signal", "bold", "noise_sd"):
        assert not np.array_equal(other[v].values, bold[v].values), v
    assert bold.attrs["subject"] == 0 and other.attrs["subject"] == 1


@pytest.mark.parametrize("bad", [-1, 1.5, "a", True])
def test_bad_subject(bad):
    with pytest.raises(ValueError, match="subject must be an integer >= 0"):
        _check_subject(bad)
    # through the public function: a ValueError, or the runtime type check's TypeError
    # (tests/conftest.py) for a value that is not an int at all
    with pytest.raises((ValueError, TypeError), match="subject"):
        make_synthetic_fmri(**SIZES, seed=0, subject=bad)
