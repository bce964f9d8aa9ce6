"""Scores, noise ceilings and FIR delays against scipy/sklearn and analytic results."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from sklearn.metrics import r2_score

from brainmodels.encoders import (
    Delayer,
    RidgeEncoder,
    correlation,
    correlation_pvalues,
    explainable_variance,
    fdr_bh,
    noise_ceiling,
    normalized_score,
    r2,
    repeats_from_trials,
    roi_summary,
    zscore_runs,
)


def test_correlation_and_r2_match_peers(rng):
    y = rng.standard_normal((50, 4))
    p = y + rng.standard_normal((50, 4))
    ref = [scipy.stats.pearsonr(y[:, i], p[:, i])[0] for i in range(4)]
    np.testing.assert_allclose(correlation(y, p), ref, rtol=1e-12)  # both float64
    np.testing.assert_allclose(r2(y, p), r2_score(y, p, multioutput="raw_values"), rtol=1e-12)
    da = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"roi": ("voxel", list("abcd"))})
    out = correlation(da, p)
    assert out.dims == ("voxel",) and list(out.roi.values) == list("abcd")


def test_explainable_variance_is_unbiased(rng):
    # signal variance s, noise variance 1: single-trial EV = s / (s + 1) (analytic)
    s = np.array([0.0, 0.25, 1.0, 4.0])
    n_rep, n_stim, n_sim = 3, 200, 300
    signal = rng.standard_normal((n_sim, 1, n_stim, 4)) * np.sqrt(s)
    data = signal + rng.standard_normal((n_sim, n_rep, n_stim, 4))
    ev = np.stack([explainable_variance(d) for d in data])
    raw = np.stack([explainable_variance(d, bias_correction=False) for d in data])
    truth = s / (s + 1)
    # mean over 300 simulations: standard error ~ 0.03 / sqrt(300) < 0.002 -> 0.01 tolerance;
    # the uncorrected estimate is biased up by (1 - ev) / n_rep (0.33 at ev = 0)
    np.testing.assert_allclose(ev.mean(0), truth, atol=0.01)
    assert raw.mean(0)[0] > 0.3
    nc = noise_ceiling(truth)
    np.testing.assert_allclose(nc, np.sqrt(truth))
    # the ceiling for an average of 3 trials: sqrt(s / (s + 1/3))
    np.testing.assert_allclose(noise_ceiling(truth, n_average=3), np.sqrt(s / (s + 1 / 3)))


def test_noise_ceiling_is_the_best_possible_correlation(rng):
    # the true signal itself reaches the ceiling on new single trials (within sampling error)
    n = 20000
    signal = rng.standard_normal((n, 3)) * np.array([0.5, 1.0, 2.0])
    trial = signal + rng.standard_normal((n, 3))
    ev = signal.var(0) / (signal.var(0) + 1)
    # 1/sqrt(n) ~ 0.007 sampling error -> 0.02 tolerance
    np.testing.assert_allclose(correlation(trial, signal), noise_ceiling(ev), atol=0.02)


def test_normalized_score_and_repeats(rng):
    with pytest.warns(RuntimeWarning, match=r"1 voxel\(s\) with a noise ceiling below"):
        out = normalized_score(np.array([0.4, 0.2, 0.1]), np.array([0.8, 0.5, 0.05]))
    np.testing.assert_allclose(out[:2], [0.5, 0.4])
    assert np.isnan(out[2])
    betas = np.arange(12.0)[:, None] * np.ones((1, 2))
    ids = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 3])
    data, stim = repeats_from_trials(betas, ids)  # stimulus 3 (shown once) is left out
    assert data.shape == (3, 3, 2)
    with pytest.raises(ValueError, match="need >= 2 repeats"):
        repeats_from_trials(betas, ids, n_repeats=1)
    np.testing.assert_array_equal(stim, [0, 1, 2])
    np.testing.assert_array_equal(data[:, :, 0], [[0, 1, 2], [3, 4, 5], [6, 7, 8]])


def test_pvalues_and_fdr_match_scipy(rng):
    pairs = [_pair_with_r(rng, ri, 40) for ri in (0.05, 0.2, 0.5, -0.1)]
    ref = [scipy.stats.pearsonr(x, y, alternative="greater").pvalue for x, y in pairs]
    # the same t-test given the sample correlation: equal to 1e-10
    got = correlation_pvalues([scipy.stats.pearsonr(x, y)[0] for x, y in pairs], 40)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    p = rng.uniform(size=200) ** 3
    adjusted = scipy.stats.false_discovery_control(p, method="bh")
    np.testing.assert_array_equal(fdr_bh(p, q=0.05), adjusted <= 0.05)


def _pair_with_r(rng, r, n):
    x = rng.standard_normal(n)
    return x, r * x + np.sqrt(1 - r**2) * rng.standard_normal(n)


def test_roi_summary():
    out = roi_summary({"score": [0.1, 0.3, 0.5, 0.0]}, ["V1", "V1", "V1", "none"],
                      significant=[True, False, True, False])
    assert list(out.roi.values) == ["V1", "none"]
    np.testing.assert_allclose(out["median_score"], [0.3, 0.0])
    np.testing.assert_allclose(out["fraction_significant"], [2 / 3, 0.0])
    np.testing.assert_array_equal(out["n_voxels"], [3, 1])


def test_delayer_shifts_within_runs_and_inverts():
    X = np.arange(1.0, 9.0)[:, None] * np.array([[1.0, 10.0]])  # (8, 2)
    runs = np.repeat([0, 1], 4)
    D = Delayer(delays=(0, 1, 2)).fit_transform(X, runs=runs)
    assert D.shape == (8, 6)
    np.testing.assert_array_equal(D[:, 0], X[:, 0])
    np.testing.assert_array_equal(D[:, 2], [0, 1, 2, 3, 0, 5, 6, 7])  # never crosses runs
    np.testing.assert_array_equal(D[:, 5], [0, 0, 10, 20, 0, 0, 50, 60])
    back = Delayer(delays=(0, 1, 2)).reshape_by_delays(np.arange(12.0).reshape(6, 2))
    assert back.shape == (3, 2, 2)
    np.testing.assert_array_equal(back[1], [[4, 5], [6, 7]])
    neg = Delayer(delays=(-1,)).fit_transform(X[:4])
    np.testing.assert_array_equal(neg[:, 0], [2, 3, 4, 0])
    da = xr.DataArray(X, dims=("time", "feature"), coords={"run": ("time", runs)})
    labelled = Delayer(delays=(0, 1, 2)).fit_transform(da)
    np.testing.assert_array_equal(labelled.values, D)
    np.testing.assert_array_equal(labelled.delay.values, [0, 0, 1, 1, 2, 2])


def test_zscore_runs(rng):
    X = rng.standard_normal((30, 3)) * 5 + 2
    runs = np.repeat([1, 2, 3], 10)
    Z = zscore_runs(X, runs)
    for r in (1, 2, 3):
        np.testing.assert_allclose(Z[runs == r].mean(0), 0, atol=1e-6)
        np.testing.assert_allclose(Z[runs == r].std(0), 1, rtol=1e-5)
    X[:10, 1] = 4.0
    assert np.all(zscore_runs(X, runs)[:10, 1] == 0)  # constant within a run -> 0


def test_fir_ridge_recovers_delayed_weights(rng):
    # a voxel responding to the feature 2 TRs later: the delay-2 weight carries it all
    T, runs = 400, np.repeat([0, 1, 2, 3], 100)
    x = rng.standard_normal((T, 1)).astype(np.float32)
    delayer = Delayer(delays=(1, 2, 3, 4))
    D = delayer.fit_transform(x, runs=runs)
    y = 2.0 * D[:, 1] + 0.1 * rng.standard_normal(T).astype(np.float32)
    enc = RidgeEncoder(alphas=np.logspace(-3, 3, 7), cv="runs").fit(D, y, runs=runs)
    w = delayer.reshape_by_delays(enc.coef_)
    assert w.shape == (4, 1)
    # noise sd 0.1 over 400 samples: weight error ~ 0.005 -> 0.05 tolerance
    np.testing.assert_allclose(w[:, 0], [0.0, 2.0, 0.0, 0.0], atol=0.05)


def test_explainable_variance_of_a_voxel_constant_within_a_repeat(rng):
    """A voxel constant within one repeat: refused by default (the error names it and the
    option), or with constant="zero" given 0 with a warning naming it; the other voxels keep
    their values (each voxel is computed on its own), in every chunk of 2,048 voxels."""
    data = rng.standard_normal((3, 40, 2100)) + rng.standard_normal((1, 40, 2100))
    data[1, :, 7] = 2.0
    data[:, :, 2050] = -1.0  # in the second chunk, constant in every repeat
    with pytest.raises(ValueError, match=r"voxel\(s\) \[7\].*constant='zero'"):
        explainable_variance(data)
    with pytest.raises(ValueError, match="constant must be"):
        explainable_variance(data, constant="nan")
    with pytest.warns(UserWarning, match=r"explainable variance 0 for 2 voxel\(s\).*\[7, 2050\]"):
        ev = explainable_variance(data, constant="zero")
    assert ev[7] == 0 and ev[2050] == 0
    rest = np.setdiff1d(np.arange(2100), [7, 2050])
    # same values to float64 round-off (the chunks of 2,048 voxels fall differently: ~10 eps)
    np.testing.assert_allclose(ev[rest], explainable_variance(data[:, :, rest]), rtol=1e-14)
