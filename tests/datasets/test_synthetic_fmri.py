"""make_synthetic_fmri: contract, determinism, noise ceiling and ground-truth structure.

The module-scoped dataset is smaller than the default (600 stimuli, 6 mm voxels -> 8,735
voxels, ~1,000 responsive) so that the file runs in a few seconds; the generator is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from brainmodels.datasets import (
    gabor_energy,
    ground_truth_features,
    make_stimuli,
    make_synthetic_fmri,
    render_stimuli,
)
from brainmodels.datasets._reliability import explainable_variance, repeats_array


@pytest.fixture(scope="module")
def ds():
    return make_synthetic_fmri(600, 3, resolution_mm=6, seed=0)


def _corr(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def test_contract(ds):
    assert ds.betas.dims == ("trial", "voxel") and ds.betas.dtype == np.float32
    assert ds.signal.dims == ("stimulus", "voxel") and ds.signal.dtype == np.float32
    assert ds.sizes["trial"] == 1800 and ds.sizes["stimulus"] == 600
    for c in ("stimulus_id", "run", "session", "repeat"):
        assert ds[c].dims == ("trial",)
    for c in ("i", "j", "k", "x", "y", "z", "roi", "roi_kind"):
        assert ds[c].dims == ("voxel",)
    for c in ("category", "kind", "orientation", "position_x", "position_y", "size"):
        assert ds[c].dims == ("stimulus",)
    # each stimulus exactly n_repeats times, repeat index 0..2, runs of 75 trials
    counts = np.bincount(ds.stimulus_id.values)
    assert counts.min() == counts.max() == 3
    assert np.bincount(ds.run.values).max() == 75
    assert float(ds.images.min()) >= 0.0 and float(ds.images.max()) <= 1.0
    # true_ev and ceiling follow their definitions (float32 storage: rtol 1e-5)
    var = ds.signal.values.astype(np.float64).var(0)
    ev = var / (var + ds.noise_sd.values.astype(np.float64) ** 2)
    np.testing.assert_allclose(ds.true_ev.values, ev, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ds.noise_ceiling.values, np.sqrt(ev), rtol=1e-5, atol=1e-7)
    assert np.all(ds.noise_ceiling.values[~ds.responsive.values] == 0)
    assert set(np.unique(ds.roi_kind.values)) == {"retinotopic", "category", "none"}
    assert ds.attrs["seed"] == 0 and ds.attrs["model"] == "make_synthetic_fmri"


def test_voxels_in_mni_mask(ds):
    from nilearn.datasets import load_mni152_brain_mask

    mask = load_mni152_brain_mask(resolution=6)
    data = mask.get_fdata() > 0
    assert list(mask.shape) == ds.attrs["volume_shape"]
    np.testing.assert_array_equal(np.asarray(ds.attrs["affine"]), mask.affine)
    ijk = np.stack([ds.i.values, ds.j.values, ds.k.values], 1)
    assert data[ijk[:, 0], ijk[:, 1], ijk[:, 2]].all() and len(ijk) == data.sum()
    xyz = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    np.testing.assert_allclose(np.stack([ds.x, ds.y, ds.z], 1), xyz)


def test_deterministic_by_seed():
    a = make_synthetic_fmri(40, 2, resolution_mm=10, seed=3)
    b = make_synthetic_fmri(40, 2, resolution_mm=10, seed=3)
    c = make_synthetic_fmri(40, 2, resolution_mm=10, seed=4)
    for name in ("betas", "signal", "images", "weights_retinotopic", "noise_sd"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    np.testing.assert_array_equal(a.stimulus_id.values, b.stimulus_id.values)
    assert not np.array_equal(a.betas.values, c.betas.values)
    assert not np.array_equal(a.images.values, c.images.values)


def test_ground_truth_readout_is_exact(ds):
    # signal = sum_space features @ weights + intercept; float32 products of ~512 terms: 1e-4
    pred = sum(ground_truth_features(ds, s).values.astype(np.float64)
               @ ds[f"weights_{s}"].values.astype(np.float64) for s in ("retinotopic", "category"))
    pred = pred + ds.intercept.values
    np.testing.assert_allclose(pred, ds.signal.values, atol=1e-4)
    with pytest.raises(ValueError, match="space must be one of"):
        ground_truth_features(ds, "semantic")


def test_noise_ceiling_from_repeats_matches_truth(ds):
    est = explainable_variance(repeats_array(ds.betas.values, ds.stimulus_id.values))
    true = ds.true_ev.values
    resp = ds.responsive.values
    # 600 stimuli: the estimator's sd is ~0.03 at ev ~0.4 -> mean abs error < 0.03, no bias
    assert np.mean(np.abs(est[resp] - true[resp])) < 0.03
    assert abs(np.median(est[resp] - true[resp])) < 0.01
    assert abs(np.mean(est[~resp])) < 0.005  # 7,700 null voxels: mean of unbiased estimates
    # and the signal itself reaches the ceiling on single trials (sd ~ 1/sqrt(1800) ~ 0.02)
    r = _corr(ds.signal.values[ds.stimulus_id.values][:, resp], ds.betas.values[:, resp])
    assert np.max(np.abs(r - ds.noise_ceiling.values[resp])) < 0.08


@pytest.fixture(scope="module")
def ridge_scores(ds):
    """Held-out single-trial correlations of RidgeCV readouts (sklearn) on a voxel subset."""
    rng = np.random.default_rng(0)
    kind = ds.roi_kind.values
    vox = np.concatenate([
        rng.choice(np.flatnonzero(kind == "retinotopic"), 80, replace=False),
        np.flatnonzero(kind == "category"),
        rng.choice(np.flatnonzero(kind == "none"), 60, replace=False),
    ])
    y = ds.betas.values[:, vox].astype(np.float64)  # sklearn GCV is faster in float64
    sid = ds.stimulus_id.values
    test = ds.run.values >= 20  # last 4 of 24 runs held out
    out = {}
    for space in ("retinotopic", "category"):
        X = ground_truth_features(ds, space).values[sid].astype(np.float64)
        model = RidgeCV(alphas=np.logspace(-2, 4, 7), alpha_per_target=True)
        model.fit(X[~test], y[~test])
        out[space] = _corr(model.predict(X[test]), y[test])
    return out, kind[vox], ds.noise_ceiling.values[vox]


def test_true_features_reach_ceiling_in_responsive_voxels(ridge_scores):
    scores, kind, ceiling = ridge_scores
    ret = kind == "retinotopic"
    # 300 held-out trials: per-voxel sd ~0.05; median ratio over 80 voxels within 15%
    assert np.median(scores["retinotopic"][ret] / ceiling[ret]) > 0.85
    none = kind == "none"
    assert abs(np.median(scores["retinotopic"][none])) < 0.05
    assert abs(np.median(scores["category"][none])) < 0.05


def test_category_voxels_need_category_features(ridge_scores):
    scores, kind, ceiling = ridge_scores
    cat = kind == "category"
    assert np.median(scores["category"][cat] / ceiling[cat]) > 0.9
    # a linear readout of local oriented energy explains much less (position/size/rotation
    # invariance); measured ~0.4 of the ceiling
    assert np.median(scores["retinotopic"][cat] / ceiling[cat]) < 0.6


def test_rois_ordered_and_smooth(ds):
    roi = ds.roi.values
    ret = ["V1", "V2", "V3", "V4"]
    size = [np.median(ds.prf_size.values[roi == r]) for r in ret]
    assert np.all(np.diff(size) > 0)  # pRFs grow along the hierarchy
    y = [np.mean(ds.y.values[roi == r]) for r in ret]
    assert np.all(np.diff(y) > 0)  # and move anteriorly from the occipital pole
    left = (ds.x.values < 0) & np.isin(roi, ret)
    assert np.mean(ds.prf_x.values[left] > 0) > 0.95  # contralateral visual field
    # smooth weights: the category weights of neighbouring voxels (<= 1 voxel apart) are
    # more alike than those of random pairs in the same ROIs
    cat = np.flatnonzero(ds.roi_kind.values == "category")
    w = ds.weights_category.values[:, cat].T
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    ijk = np.stack([ds.i.values, ds.j.values, ds.k.values], 1)[cat]
    dist = np.abs(ijk[:, None] - ijk[None]).max(-1)
    same = roi[cat][:, None] == roi[cat][None]
    sim = w @ w.T
    assert sim[(dist == 1) & same].mean() > sim[(dist > 3) & same].mean() + 0.1


def test_gabor_energy_analytic():
    # a full-field grating with 8 cycles per 32 px (on the FFT grid) has a constant energy
    # of contrast / 2 in the matching channel (the one-sided filter has unit gain at its
    # centre frequency); the orthogonal channel gets ~0
    x = np.arange(32)
    img = 0.5 + 0.3 * np.cos(2 * np.pi * x / 4)[None, :].repeat(32, 0)
    e = gabor_energy(img[None], n_orientations=4, wavelengths=(4.0,), grid=4)[0]
    np.testing.assert_allclose(e[..., 0], 0.15, rtol=1e-4)  # float32 FFT: 1e-4
    assert e[..., 2].max() < 1e-3
    assert np.all(e[..., 1] < 0.15 * 0.5)


def test_shapes_drawn_at_their_position():
    params = make_stimuli(40, seed=1, grating_fraction=0.0)
    params["size"] = 0.35
    params[["position_x", "position_y"]] = params[["position_x", "position_y"]].clip(-0.5, 0.5)
    imgs = render_stimuli(params, 64)
    centers = (np.arange(64) + 0.5) / 32 - 1
    gx, gy = np.meshgrid(centers, -centers)
    ink = np.abs(imgs - 0.5)
    cx = (ink * gx).sum((1, 2)) / ink.sum((1, 2))
    cy = (ink * gy).sum((1, 2)) / ink.sum((1, 2))
    # shapes are not symmetric about their centre: centroid within 0.4 radius (0.14 units)
    assert np.max(np.hypot(cx - params.position_x, cy - params.position_y)) < 0.14


@pytest.mark.parametrize("kwargs", [dict(n_stimuli=1), dict(n_repeats=0),
                                    dict(resolution_mm=3.5), dict(categories=("dog",)),
                                    dict(image_size=36), dict(grating_fraction=1.0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_synthetic_fmri(**{"n_stimuli": 20, "n_repeats": 2, "resolution_mm": 10, **kwargs})


def test_category_subset():
    ds = make_synthetic_fmri(40, 2, resolution_mm=10, seed=0, categories=("face", "house"))
    rois = set(np.unique(ds.roi.values))
    assert {"face-like", "house-like"} <= rois and not {"body-like", "tool-like"} & rois
    assert set(np.unique(ds.category.values)) == {"face", "house", "grating"}
    assert ds.sizes["feature_category"] == 2


def test_explainable_variance_invariances(rng):
    # per-voxel affine changes of the betas leave the estimate unchanged (z-scoring), and so
    # does renaming the stimuli (repeats are found by stimulus id)
    signal = rng.standard_normal((50, 6))
    ids = rng.permutation(np.repeat(np.arange(50), 4))
    betas = signal[ids] + rng.standard_normal((200, 6))
    ev = explainable_variance(repeats_array(betas, ids))
    scaled = explainable_variance(repeats_array(3.0 * betas - 7.0, ids))
    np.testing.assert_allclose(scaled, ev, rtol=1e-10)  # float64 arithmetic only
    rename = rng.permutation(50)
    np.testing.assert_allclose(explainable_variance(repeats_array(betas, rename[ids])), ev,
                               rtol=1e-10)
    with pytest.raises(ValueError, match="no repeated stimulus"):
        repeats_array(betas[:50], np.arange(50))


def test_noise_does_not_depend_on_thread_count(monkeypatch):
    from brainmodels.datasets.synthetic import _gaussian_noise

    sd = np.linspace(0.5, 2.0, 7)
    many = _gaussian_noise((600, 7), sd, 3)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    np.testing.assert_array_equal(_gaussian_noise((600, 7), sd, 3), many)
    # the sds are applied per voxel (600 draws: sample sd within 10%)
    np.testing.assert_allclose(many.std(0), sd, rtol=0.1)
