"""RidgeEncoder against scikit-learn and himalaya on the same data."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold, LeaveOneGroupOut

from brainmodels.encoders import RidgeEncoder, kfold_splits, r2
from brainmodels.testing import compilations

ALPHAS = np.logspace(-2, 5, 15)


def _data(rng, n, p, v, dtype=np.float64):
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, v)) * rng.uniform(0.0, 0.6, v)  # voxels from noise to signal
    Y = X @ W + rng.standard_normal((n, v)) * 2.0 + rng.standard_normal(v) * 3.0
    return X.astype(dtype), Y.astype(dtype)


@pytest.mark.parametrize(
    ("solver", "shape", "fit_intercept"),
    [("svd", (80, 12), True), ("primal", (80, 12), False), ("dual", (30, 60), True),
     ("svd", (30, 60), False)],
)
def test_fixed_alpha_matches_sklearn_ridge(x64, rng, solver, shape, fit_intercept):
    X, Y = _data(rng, *shape, v=7)
    enc = RidgeEncoder(alphas=[2.5], cv=3, solver=solver, fit_intercept=fit_intercept).fit(X, Y)
    ref = Ridge(alpha=2.5, fit_intercept=fit_intercept).fit(X, Y)
    # float64 throughout; the three decompositions are exact up to rounding: 1e-9 relative
    np.testing.assert_allclose(enc.coef_, ref.coef_.T, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(enc.intercept_, ref.intercept_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(enc.predict(X), ref.predict(X), rtol=1e-9, atol=1e-9)
    assert enc.coef_.dtype == np.float64


@pytest.mark.parametrize("shape", [(120, 20), (40, 90)])
def test_loo_alphas_match_sklearn_ridgecv(x64, rng, shape):
    X, Y = _data(rng, *shape, v=60)
    enc = RidgeEncoder(alphas=ALPHAS, cv="loo").fit(X, Y)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    # identical choice on a discrete grid; coefficients then agree to float64 rounding
    np.testing.assert_allclose(enc.alphas_, ref.alpha_, rtol=1e-12)
    np.testing.assert_allclose(enc.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10)
    assert enc.solver_ == ("dual" if shape[1] > shape[0] else "primal")


def test_loo_float32_alphas_match_sklearn(rng):
    X, Y = _data(rng, 300, 40, 400, dtype=np.float32)
    enc = RidgeEncoder(alphas=ALPHAS, cv="loo").fit(X, Y)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X.astype(float), Y.astype(float))
    # float32 can flip a near-tie between neighbouring grid alphas: allow 1 % of voxels
    assert np.mean(np.isclose(enc.alphas_, ref.alpha_, rtol=1e-6)) >= 0.99
    assert enc.coef_.dtype == np.float32


@pytest.fixture(scope="module")
def himalaya_case():
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV

    set_backend("numpy")
    rng = np.random.default_rng(7)
    X, Y = _data(rng, 400, 50, 500, dtype=np.float32)
    Xte, Yte = X[300:], Y[300:]
    X, Y = X[:300], Y[:300]
    ref = HimalayaRidgeCV(alphas=ALPHAS, cv=5, fit_intercept=True).fit(X, Y)
    return X, Y, Xte, Yte, ref


@pytest.mark.parametrize("scoring", ["r2", "neg_mse"])
def test_kfold_matches_himalaya(himalaya_case, scoring):
    X, Y, Xte, Yte, ref = himalaya_case
    enc = RidgeEncoder(alphas=ALPHAS, cv=5, scoring=scoring).fit(X, Y)
    same = np.isclose(enc.alphas_, ref.best_alphas_, rtol=1e-4)
    assert same.mean() >= 0.99
    r2_ours = r2(Yte, enc.predict(Xte))
    r2_ref = 1 - ((Yte - ref.predict(Xte)) ** 2).sum(0) / ((Yte - Yte.mean(0)) ** 2).sum(0)
    # issue criterion: held-out R^2 within 1e-3 (float32 on both sides)
    assert np.max(np.abs(r2_ours - r2_ref)) < 1e-3


def test_kfold_is_sklearn_kfold_and_runs_is_leave_one_group_out(rng):
    X, Y = _data(rng, 61, 8, 20, dtype=np.float32)
    ours = kfold_splits(61, 4)
    for (a, b), (c, d) in zip(ours, KFold(4).split(X), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    runs = np.repeat([3, 1, 2], [20, 21, 20])
    by_runs = RidgeEncoder(alphas=ALPHAS, cv="runs").fit(X, Y, runs=runs)
    by_logo = RidgeEncoder(alphas=ALPHAS, cv=LeaveOneGroupOut()).fit(X, Y, runs=runs)
    # the same splits give the same numbers (same float32 kernels)
    np.testing.assert_allclose(by_runs.cv_scores_, by_logo.cv_scores_, rtol=1e-6, atol=1e-7)


def test_float32_close_to_float64(rng):
    X, Y = _data(rng, 200, 30, 50)
    e32 = RidgeEncoder(alphas=ALPHAS, cv=5).fit(X.astype(np.float32), Y.astype(np.float32))
    with jax.enable_x64(True):
        e64 = RidgeEncoder(alphas=ALPHAS, cv=5).fit(X, Y)
    same = e32.alphas_ == e64.alphas_
    assert same.mean() >= 0.95  # near-ties may flip in float32
    # where the same alpha is picked, float32 coefficients carry ~1e-6 relative error
    scale = np.abs(e64.coef_[:, same]).max()
    np.testing.assert_allclose(e32.coef_[:, same], e64.coef_[:, same], atol=1e-4 * scale)


def test_voxel_batch_does_not_change_results_and_compiles_once(rng):
    X, Y = _data(rng, 90, 10, 50, dtype=np.float32)
    big = RidgeEncoder(alphas=ALPHAS, cv=3, voxel_batch=1000).fit(X, Y)
    small = RidgeEncoder(alphas=ALPHAS, cv=3, voxel_batch=16).fit(X, Y)
    np.testing.assert_allclose(big.coef_, small.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(big.alphas_, small.alphas_)
    with compilations() as compiled:  # same shapes: nothing compiles again
        RidgeEncoder(alphas=ALPHAS, cv=3, voxel_batch=16).fit(X + 1.0, Y * 2.0)
    assert compiled.count == 0, compiled.names


def test_recovers_weights_noiseless(rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    W = rng.standard_normal((6, 4)).astype(np.float32)
    enc = RidgeEncoder(alphas=np.logspace(-6, 3, 10), cv="loo").fit(X, X @ W + 1.5)
    np.testing.assert_allclose(enc.coef_, W, atol=1e-3)  # smallest alpha wins; float32
    np.testing.assert_allclose(enc.intercept_, 1.5, atol=1e-3)
    # noiseless: small alphas tie at float32 rounding; ties go to the larger alpha
    assert np.all(enc.alphas_ <= 1e-2)


def test_xarray_in_xarray_out(rng):
    X, Y = _data(rng, 60, 5, 8, dtype=np.float32)
    Xd = xr.DataArray(X, dims=("stimulus", "feature"), coords={"feature": list("abcde")})
    Yd = xr.DataArray(Y, dims=("stimulus", "voxel"),
                      coords={"roi": ("voxel", ["V1"] * 4 + ["V2"] * 4), "i": ("voxel", range(8))})
    enc = RidgeEncoder(alphas=ALPHAS, cv=3).fit(Xd, Yd)
    assert enc.coef_.dims == ("feature", "voxel")
    assert list(enc.coef_.feature.values) == list("abcde")
    assert list(enc.alphas_.roi.values) == list(Yd.roi.values)
    assert enc.cv_scores_.dims == ("alpha", "voxel")
    pred = enc.predict(Xd)
    assert pred.dims == ("stimulus", "voxel") and "roi" in pred.coords
    np.testing.assert_allclose(pred.values, enc.predict(X), rtol=1e-6)
    score = enc.score_voxels(Xd, Yd)
    assert score.dims == ("voxel",) and "roi" in score.coords
    numpy_enc = RidgeEncoder(alphas=ALPHAS, cv=3).fit(X, Y)
    assert isinstance(numpy_enc.coef_, np.ndarray)
    np.testing.assert_allclose(numpy_enc.coef_, enc.coef_.values)
    # a 1-D target gives 1-D outputs (sklearn convention)
    one = RidgeEncoder(alphas=ALPHAS, cv=3).fit(X, Y[:, 0])
    assert one.coef_.shape == (5,) and one.predict(X).shape == (60,)
    np.testing.assert_allclose(one.coef_, numpy_enc.coef_[:, 0], rtol=1e-5, atol=1e-6)


def _ill_conditioned(rng, n, p, cond, rank=None):
    """X = U diag(s) V^T + offset with singular values log-spaced over ``cond`` (real CNN
    features and word embeddings are this collinear), rounded to float32 as data would be."""
    k = rank or min(n, p)
    U, _ = np.linalg.qr(rng.standard_normal((n, k)))
    V, _ = np.linalg.qr(rng.standard_normal((p, k)))
    s = 30.0 * np.logspace(0, -np.log10(cond), k)
    X = ((U * s) @ V.T + 5.0).astype(np.float32)
    Y = (X @ rng.standard_normal((p, 12)) + 0.1 * rng.standard_normal((n, 12))).astype(np.float32)
    return X, Y


@pytest.mark.parametrize("cond", [1e3, 1e5])
@pytest.mark.parametrize(("n", "p"), [(600, 60), (80, 300)], ids=["primal", "dual"])
def test_float32_default_is_accurate_on_ill_conditioned_designs(n, p, cond):
    """float32 fits against scikit-learn in float64 on the same (float32-rounded) data. The
    eigen-routes square the condition number; before they were formed in float64 the primal
    route was 1.1e-2 off at condition number 1e3. Now ~7e-6 is seen: 1e-4 (~1700 float32 eps,
    the rounding of s_i / s_max ~ 1e-5 components) is the bound."""
    from sklearn.linear_model import Ridge, RidgeCV

    X, Y = _ill_conditioned(np.random.default_rng(int(cond) % 97 + n), n, p, cond)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    for alpha in (1e-2, 1.0):
        enc = RidgeEncoder(alphas=[alpha], cv=3).fit(X, Y)
        assert enc.coef_.dtype == np.float32 and enc.solver_ == ("primal" if n > p else "dual")
        ref = Ridge(alpha=alpha).fit(X64, Y64).predict(X64)
        scale = np.abs(ref - ref.mean(0)).max()
        assert np.abs(enc.predict(X) - ref).max() / scale < 1e-4
    # the exact leave-one-out errors too
    loo = RidgeEncoder(alphas=[1e-2], cv="loo", scoring="neg_mse").fit(X, Y)
    ref = RidgeCV(alphas=[1e-2], store_cv_results=True).fit(X64, Y64)
    mse = ref.cv_results_[..., 0].mean(axis=0)
    np.testing.assert_allclose(-loo.best_cv_scores_, mse, rtol=1e-3)


def test_cv_average_criteria_match_brute_force_scikit_learn(x64):
    """Both K-fold criteria, against a brute force of scikit-learn's Ridge fold by fold
    (float64 on both sides, so the choice itself is compared): "pooled" (default) maximises
    the R^2 of all out-of-fold predictions, "folds" the mean of per-fold R^2 (himalaya's
    documented criterion). On scikit-learn's diabetes design with 300 noisy targets the two
    pick different alphas for a tenth or more of the targets."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X = load_diabetes().data
    rng = np.random.default_rng(3)
    Y = X @ rng.standard_normal((10, 300)) * 5 + rng.standard_normal((len(X), 300)) * \
        rng.uniform(0.05, 0.3, 300)
    alphas = np.logspace(-4, 2, 13)
    per_fold = np.zeros((5, alphas.size, 300))
    sse, sst = np.zeros((alphas.size, 300)), np.zeros(300)
    for f, (train, test) in enumerate(KFold(5).split(X)):
        spread = ((Y[test] - Y[test].mean(0)) ** 2).sum(0)
        sst += spread
        for a, alpha in enumerate(alphas):
            err = ((Y[test] - Ridge(alpha=alpha).fit(X[train], Y[train]).predict(X[test])) ** 2
                   ).sum(0)
            per_fold[f, a] = 1 - err / spread
            sse[a] += err
    folds = RidgeEncoder(alphas=alphas, cv=5, cv_average="folds").fit(X, Y)
    pooled = RidgeEncoder(alphas=alphas, cv=5).fit(X, Y)
    np.testing.assert_allclose(folds.cv_scores_, per_fold.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pooled.cv_scores_, 1 - sse / sst, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(folds.alphas_, alphas[per_fold.mean(0).argmax(0)])
    np.testing.assert_array_equal(pooled.alphas_, alphas[(1 - sse / sst).argmax(0)])
    assert np.mean(folds.alphas_ != pooled.alphas_) > 0.1
    with pytest.raises(ValueError, match="cv_average must be one of"):
        RidgeEncoder(cv_average="mean").fit(X, Y)


def test_loo_float32_best_mse_matches_sklearn_on_diabetes():
    """Exact LOO in float32 on scikit-learn's diabetes design with 300 targets: the best LOO
    MSE per target against RidgeCV(alpha_per_target=True) in float64 on the same float32
    data (2e-7 seen; 1e-5, ~170 float32 eps, allowed), and the same alphas. The issue's
    2.4 % was not reproduced with these targets (the old code passes here too); the
    ill-conditioned tests above are the ones that fail on the old eigen-routes."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import RidgeCV

    X = load_diabetes().data.astype(np.float32)
    rng = np.random.default_rng(0)
    Y = (X @ rng.standard_normal((10, 300)) * 50 + rng.standard_normal((len(X), 300)) * 5
         ).astype(np.float32)
    alphas = np.logspace(-4, 2, 13)
    ref = RidgeCV(alphas=alphas, alpha_per_target=True, store_cv_results=True).fit(
        X.astype(np.float64), Y.astype(np.float64))
    enc = RidgeEncoder(alphas=alphas, cv="loo", scoring="neg_mse").fit(X, Y)
    np.testing.assert_allclose(-np.asarray(enc.best_cv_scores_),
                               ref.cv_results_.mean(0).min(-1), rtol=1e-5)
    np.testing.assert_allclose(enc.alphas_, ref.alpha_)
