"""Bad input to RidgeEncoder gives clear errors (or the documented handling)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.exceptions import NotFittedError

from brainmodels.encoders import RidgeEncoder, correlation, r2

ALPHAS = np.logspace(-2, 4, 7)


@pytest.fixture
def xy(rng):
    X = rng.standard_normal((40, 5)).astype(np.float32)
    Y = (X @ rng.standard_normal((5, 6)) + rng.standard_normal((40, 6))).astype(np.float32)
    return X, Y


def test_nan_voxels_are_named(xy):
    X, Y = xy
    Y[3, 4] = np.nan
    with pytest.raises(ValueError, match=re.escape("voxel(s) [4]")):
        RidgeEncoder(alphas=ALPHAS).fit(X, Y)
    X[0, 2] = np.inf
    with pytest.raises(ValueError, match=re.escape("X contains 1 NaN or infinite")):
        RidgeEncoder(alphas=ALPHAS).fit(X, Y)


def test_constant_voxels_error_or_dropped(xy):
    X, Y = xy
    Y[:, [1, 5]] = 3.0
    with pytest.raises(ValueError, match=re.escape("(indices [1, 5]); drop them or pass "
                                                   "drop_constant=True")):
        RidgeEncoder(alphas=ALPHAS, cv=4).fit(X, Y)
    enc = RidgeEncoder(alphas=ALPHAS, cv=4, drop_constant=True).fit(X, Y)
    np.testing.assert_array_equal(enc.constant_voxels_, [1, 5])
    assert np.all(enc.coef_[:, [1, 5]] == 0) and np.allclose(enc.intercept_[[1, 5]], 3.0)
    assert np.all(enc.alphas_[[1, 5]] == ALPHAS.max())
    assert np.all(np.isfinite(enc.cv_scores_))
    # the other voxels are fitted exactly as without the constant ones
    ref = RidgeEncoder(alphas=ALPHAS, cv=4).fit(X, Y[:, [0, 2, 3, 4]])
    np.testing.assert_allclose(enc.coef_[:, [0, 2, 3, 4]], ref.coef_, rtol=1e-5, atol=1e-6)
    # scoring a constant voxel is undefined: NaN with a warning naming it, never silently
    with pytest.warns(RuntimeWarning, match=re.escape("2 constant voxel(s) [1, 5]")):
        scores = enc.score_voxels(X, Y)
    assert np.isnan(scores[[1, 5]]).all() and np.isfinite(scores[[0, 2, 3, 4]]).all()


def test_length_mismatch_and_too_few_samples(xy):
    X, Y = xy
    with pytest.raises(ValueError, match="X has 40, Y has 39"):
        RidgeEncoder(alphas=ALPHAS).fit(X, Y[:39])
    with pytest.raises(ValueError, match="cv=5 folds needs at least 5 samples, got 4"):
        RidgeEncoder(alphas=ALPHAS, cv=5).fit(X[:4], Y[:4])


def test_runs_checks(xy):
    X, Y = xy
    with pytest.raises(ValueError, match=re.escape("runs must have one entry per sample, shape "
                                                   "(40,); got shape (39,)")):
        RidgeEncoder(alphas=ALPHAS, cv="runs").fit(X, Y, runs=np.zeros(39))
    with pytest.raises(ValueError, match="needs the run of every sample"):
        RidgeEncoder(alphas=ALPHAS, cv="runs").fit(X, Y)
    with pytest.raises(ValueError, match="at least 2 distinct runs"):
        RidgeEncoder(alphas=ALPHAS, cv="runs").fit(X, Y, runs=np.zeros(40))


def test_all_identical_features(xy):
    X, Y = xy
    with pytest.raises(ValueError, match="all 5 features of X are constant"):
        RidgeEncoder(alphas=ALPHAS).fit(np.ones_like(X), Y)
    # a single constant feature is harmless: it gets zero weight
    X[:, 2] = 7.0
    enc = RidgeEncoder(alphas=ALPHAS, cv=4).fit(X, Y)
    assert np.allclose(enc.coef_[2], 0.0, atol=1e-5)


def test_bad_parameters(xy):
    X, Y = xy
    with pytest.raises(ValueError, match="alphas must be a 1-D array of positive numbers"):
        RidgeEncoder(alphas=[1.0, -1.0]).fit(X, Y)
    with pytest.raises(ValueError, match=r"scoring must be one of \['correlation', 'neg_mse', "):
        RidgeEncoder(scoring="mse").fit(X, Y)
    with pytest.raises(ValueError, match="solver must be one of"):
        RidgeEncoder(solver="qr").fit(X, Y)
    with pytest.raises(ValueError, match="cv must be an int, a scikit-learn splitter or one of"):
        RidgeEncoder(cv="kfold").fit(X, Y)
    with pytest.raises(TypeError, match="cv must be an int"):
        RidgeEncoder(cv=2.5).fit(X, Y)
    with pytest.raises(ValueError, match="X must be 2-D"):
        RidgeEncoder().fit(X[:, 0], Y)
    with pytest.raises(NotFittedError, match="not fitted"):
        RidgeEncoder().predict(X)
    enc = RidgeEncoder(alphas=ALPHAS, cv=4).fit(X, Y)
    with pytest.raises(ValueError, match="X has 4 features, but RidgeEncoder is expecting 5"):
        enc.predict(X[:, :4])


def test_score_functions_warn_on_constant(rng):
    y = rng.standard_normal((20, 3))
    y[:, 1] = 2.0
    with pytest.warns(RuntimeWarning, match=re.escape("[1]")):
        out = r2(y, y + 0.1)
    assert np.isnan(out[1])
    with pytest.warns(RuntimeWarning, match="correlation is undefined"):
        correlation(y, y)


def test_loo_never_picks_a_singular_alpha(rng):
    # p > n and alpha ~ 0: the LOO hat matrix is ~ identity, LOO residuals 0/0 in float32
    X = rng.standard_normal((20, 50)).astype(np.float32)
    Y = rng.standard_normal((20, 3)).astype(np.float32)
    enc = RidgeEncoder(alphas=[1e-12, 10.0], cv="loo").fit(X, Y)
    assert np.all(enc.alphas_ == 10.0)
    assert np.all(np.isfinite(enc.coef_))


def test_loo_on_a_time_series_warns(xy):
    """cv='loo' on BOLD volumes (a 'time' dim or runs) was accepted silently."""
    X, Y = xy
    Xt = xr.DataArray(X, dims=("time", "feature"))
    with pytest.warns(UserWarning, match="cv='runs'"):
        RidgeEncoder(alphas=ALPHAS, cv="loo").fit(Xt, Y)
    with pytest.warns(UserWarning, match="comes with runs"):
        RidgeEncoder(alphas=ALPHAS, cv="loo").fit(X, Y, runs=np.repeat([0, 1], len(X) // 2))
    with warnings.catch_warnings():  # betas of distinct stimuli: no warning
        warnings.simplefilter("error")
        RidgeEncoder(alphas=ALPHAS, cv="loo").fit(xr.DataArray(X, dims=("stimulus", "feature")),
                                                  Y)


def test_fit_reports_progress_over_voxel_batches(xy):
    """fit(progress=) wraps the voxel batches (tqdm-like); the library draws no bar."""
    X, Y = xy
    seen = []

    def meter(batches):
        for b in batches:
            seen.append(b)
            yield b

    plain = RidgeEncoder(alphas=ALPHAS, cv=4, voxel_batch=3).fit(X, Y)
    tracked = RidgeEncoder(alphas=ALPHAS, cv=4, voxel_batch=3).fit(X, Y, progress=meter)
    assert len(seen) == -(-Y.shape[1] // 3)
    np.testing.assert_array_equal(plain.cv_scores_, tracked.cv_scores_)
