"""Nonlinear encoders (attention routing, factorized readout, in-context) on the synthetic
fMRI dataset, whose ground truth says what each must recover, against ridge on the same data.

The synthetic data (8 mm, 1,000 stimuli x 3 repeats) have retinotopic ROIs that are linear in
the Gabor-energy map (ridge's model class is exact for them) and category ROIs that respond to
the object's category wherever it is (not linear in the map: ridge reaches a median normalised
r of ~0.15 there). Scores are held-out single-trial correlations divided by the true noise
ceiling; differences are medians over the ROI's voxels (~100-300), whose sampling error is
~0.02.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from brainmodels.datasets import feature_map, make_synthetic_fmri
from brainmodels.encoders import (
    AttentionRoutingEncoder,
    FactorizedReadout,
    InContextEncoder,
    RidgeEncoder,
    correlation,
)


def _averaged(ds: xr.Dataset) -> xr.DataArray:
    """Repeat-averaged responses of the responsive voxels, (stimulus, voxel) with voxel coords."""
    resp = ds["responsive"].values
    betas = ds["betas"].isel(voxel=resp)
    return betas.groupby(betas["stimulus_id"]).mean().rename(stimulus_id="stimulus")


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic_fmri(1000, 3, resolution_mm=8, seed=0)
    fmap = feature_map(ds)
    Y = _averaged(ds)
    perm = np.random.default_rng(0).permutation(ds.sizes["stimulus"])
    test, train = np.sort(perm[:200]), np.sort(perm[200:])
    held = np.isin(ds["stimulus_id"].values, test)
    resp = ds["responsive"].values
    trials = ds["betas"].values[held][:, resp]
    return dict(ds=ds, fmap=fmap, Y=Y, train=train, test=test, trial_ids=ds["stimulus_id"]
                .values[held], trials=trials, ceiling=ds["noise_ceiling"].values[resp],
                kind=ds["roi_kind"].values[resp])


def _normalised(d, predict) -> np.ndarray:
    """Held-out single-trial r / true noise ceiling, per voxel."""
    pred = np.asarray(predict(d["trial_ids"]))
    return np.asarray(correlation(d["trials"], pred)) / d["ceiling"]


@pytest.fixture(scope="module")
def ridge_scores(data):
    flat = data["fmap"].values.reshape(data["fmap"].sizes["stimulus"], -1)
    enc = RidgeEncoder(alphas=np.logspace(-2, 5, 15), cv="loo").fit(
        flat[data["train"]], data["Y"].values[data["train"]])
    return _normalised(data, lambda ids: enc.predict(flat[ids]))


@pytest.fixture(scope="module")
def attention(data):
    enc = AttentionRoutingEncoder(max_steps=1500, seed=0)
    return enc.fit(data["fmap"].isel(stimulus=data["train"]),
                   data["Y"].isel(stimulus=data["train"]))


def test_attention_routing_beats_ridge_on_category_rois(data, ridge_scores, attention):
    ours = _normalised(data, lambda ids: attention.predict(data["fmap"].isel(stimulus=ids)))
    kind = data["kind"]
    cat = np.median(ours[kind == "category"]), np.median(ridge_scores[kind == "category"])
    ret = np.median(ours[kind == "retinotopic"]), np.median(ridge_scores[kind == "retinotopic"])
    print(f"category {cat[0]:.3f} vs ridge {cat[1]:.3f}; retinotopic {ret[0]:.3f} vs {ret[1]:.3f}")
    # routing by content: ridge cannot follow the object (measured 0.80 vs 0.14)
    assert cat[0] > cat[1] + 0.4
    # retinotopic voxels are exactly linear in the map (ridge's model class); one query per ROI
    # pools the map through 4 heads and comes within a few percent (measured -0.04)
    assert ret[0] > ret[1] - 0.07
    assert attention.n_traces_ == 1


def test_attention_maps_point_at_the_object(data, attention):
    ds = data["ds"]
    shapes = np.flatnonzero(ds["kind"].values == "shape")[:200]
    maps = attention.attention_maps(data["fmap"].isel(stimulus=shapes))
    assert maps.dims == ("stimulus", "query", "y", "x")
    np.testing.assert_allclose(maps.sum(("y", "x")), 1.0, atol=1e-4)  # softmax over tokens
    cat = maps.isel(query=np.isin(maps["roi"].values, ["face-like", "house-like",
                                                      "body-like", "tool-like"])).mean("query")
    cx = (cat * cat["x"]).sum(("y", "x")).values
    cy = (cat * cat["y"]).sum(("y", "x")).values
    half = ds.attrs["field_of_view_deg"] / 2
    ox = ds["position_x"].values[shapes] * half
    oy = ds["position_y"].values[shapes] * half
    # the attention's centre follows the object: correlated with its position on both axes
    rx, ry = np.corrcoef(cx, ox)[0, 1], np.corrcoef(cy, oy)[0, 1]
    print(f"attention centre vs object position: r_x {rx:.2f}, r_y {ry:.2f}")
    assert rx > 0.5 and ry > 0.5


def test_factorized_readout_recovers_receptive_fields(data, ridge_scores):
    ret = data["ds"]["roi_kind"].values == "retinotopic"
    Y = _averaged(data["ds"].isel(voxel=ret))
    enc = FactorizedReadout(seed=0).fit(data["fmap"].isel(stimulus=data["train"]),
                                        Y.isel(stimulus=data["train"]))
    rf = enc.receptive_fields_
    truth_x, truth_y = Y["prf_x_deg"].values, Y["prf_y_deg"].values
    err = np.hypot(rf["rf_x"].values - truth_x, rf["rf_y"].values - truth_y)
    cell = data["ds"].attrs["field_of_view_deg"] / data["fmap"].sizes["x"]
    print(f"median receptive-field error {np.median(err):.2f} deg (grid cell {cell:.2f} deg)")
    # measured 0.40 deg: under half a cell of the 8 x 8 map the readout sees
    assert np.median(err) < 0.5 * cell
    pred = enc.predict(data["fmap"].isel(stimulus=data["test"]))
    assert {"rf_x", "rf_y", "roi"} <= set(pred.coords)
    r = np.asarray(correlation(Y.isel(stimulus=data["test"]).values, pred.values))
    assert np.median(r) > 0.5


def _subject(k: int):
    ds = make_synthetic_fmri(1000, 2, resolution_mm=8, seed=0, subject=k)
    X = np.concatenate([ds["features_retinotopic"].values, ds["features_category"].values], 1)
    return X, _averaged(ds).values, ds["signal"].values[:, ds["responsive"].values]


def test_in_context_encoder_beats_ridge_on_a_new_subject():
    subjects = [_subject(k) for k in range(4)]
    X = subjects[0][0]
    train, test = np.arange(800), np.arange(800, 1000)  # test stimuli never seen in training
    Y = np.concatenate([s[1][train] for s in subjects[:3]], 1)
    enc = InContextEncoder(max_steps=1000, seed=0).fit(X[train], Y)
    _, Yn, signal = subjects[3]
    ctx = train[:50]
    enc.condition(X[ctx], Yn[ctx])
    ours = np.asarray(correlation(signal[test], enc.predict(X[test])))
    ridge = RidgeEncoder(alphas=np.logspace(-2, 6, 17), cv="loo").fit(X[ctx], Yn[ctx])
    theirs = np.asarray(correlation(signal[test], ridge.predict(X[test])))
    print(f"50 context stimuli: in-context r {ours.mean():.3f}, ridge {theirs.mean():.3f}")
    # measured 0.91 vs 0.83 (2,000 steps); the margin is many times the sampling error
    assert ours.mean() > theirs.mean() + 0.03
    assert enc.coef_.shape == (X.shape[1], Yn.shape[1])
