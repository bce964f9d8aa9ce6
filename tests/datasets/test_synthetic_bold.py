"""make_synthetic_bold and hrf_regressors against nilearn's SPM HRF regressors."""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.glm.first_level import compute_regressor

from brainmodels.datasets import hrf_regressors, make_synthetic_bold


@pytest.fixture(scope="module")
def bold():
    return make_synthetic_bold(80, 2, resolution_mm=8, seed=0)


def test_hrf_regressors_match_nilearn():
    frame_times = np.arange(80) * 2.0
    onsets, durations = [3.3, 20.0, 51.7], [1.0, 2.5, 0.5]
    mine = hrf_regressors(onsets, durations, frame_times, tr=2.0, oversampling=500)
    for e in range(3):
        ref, _ = compute_regressor(np.array([[onsets[e]], [durations[e]], [1.0]]), "spm",
                                   frame_times, oversampling=500)
        # nilearn rounds onsets/durations to its tr/500 = 4 ms grid: agreement to 0.5% of peak
        assert np.max(np.abs(mine[:, e] - ref[:, 0])) < 5e-3 * ref.max()


def test_bold_contract(bold):
    assert bold.bold.dims == ("time", "voxel") and bold.bold.dtype == np.float32
    assert bold.run.dims == ("time",) and bold.features_retinotopic.dims[0] == "time"
    assert np.all(np.diff(bold.time.values) == 2.0) and bold.time.attrs["units"] == "s"
    for c in ("onset", "duration", "event_stimulus", "event_run"):
        assert bold[c].dims == ("event",)
    assert np.array_equal(np.sort(bold.event_stimulus.values), np.arange(80))
    for c in ("i", "j", "k", "x", "y", "z", "roi"):
        assert bold[c].dims == ("voxel",)


def test_bold_is_hrf_convolved_signal(bold):
    """Rebuild the noiseless series from the events with nilearn's regressors."""
    resp = np.flatnonzero(bold.responsive.values)
    clean = []
    for r in range(2):
        ev = np.flatnonzero(bold.event_run.values == r)
        ft = bold.frame_time.values[bold.run.values == r]
        reg = np.stack([compute_regressor(
            np.array([[bold.onset.values[e]], [bold.duration.values[e]], [1.0]]), "spm", ft,
            oversampling=50)[0][:, 0] for e in ev], 1)
        clean.append(reg @ bold.signal.values[bold.event_stimulus.values[ev]][:, resp])
    clean = np.concatenate(clean)
    y = bold.bold.values[:, resp]
    a, b = clean - clean.mean(0), y - y.mean(0)
    r = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    # 660 frames: sd of r ~0.03; nilearn's onset rounding (~1% of peak) costs < 0.01
    assert np.median(np.abs(r - bold.noise_ceiling.values[resp])) < 0.03


def test_features_at_tr_resolution(bold):
    # each 1 s event contributes duration / TR = 0.5 of its features in total
    total = bold.features_category.values.sum(0)
    per_event = bold.stimulus_features_category.values[bold.event_stimulus.values].sum(0)
    np.testing.assert_allclose(total, 0.5 * per_event, rtol=1e-5)


def test_bold_bad_tr():
    with pytest.raises(ValueError, match="tr must be > 0"):
        make_synthetic_bold(10, 1, tr=0.0, resolution_mm=10)
