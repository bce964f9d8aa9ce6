"""BandedRidgeEncoder: reductions to ridge, split scores, attribution, himalaya, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.model_selection import KFold

from brainmodels.encoders import (
    BandedRidgeEncoder,
    RidgeEncoder,
    band_candidates,
    r2,
    r2_split,
    stack_feature_spaces,
    variance_partitioning,
)

ALPHAS = np.logspace(-2, 5, 15)


def _two_spaces(rng, n=240, p=(6, 40), v=40, noise=0.5):
    """Voxels 0..v/2 driven by space A only, the rest by space B only."""
    A = rng.standard_normal((n, p[0]))
    B = rng.standard_normal((n, p[1]))
    half = v // 2
    Y = np.concatenate([A @ rng.standard_normal((p[0], half)),
                        B @ rng.standard_normal((p[1], v - half)) / np.sqrt(p[1] / p[0])], 1)
    Y += noise * Y.std(0) * rng.standard_normal(Y.shape)
    return A, B, Y


def test_one_space_is_ridge_encoder(rng):
    A, _, Y = _two_spaces(rng)
    band = BandedRidgeEncoder(alphas=ALPHAS, cv=5, n_iter=3).fit([A], Y)
    ridge = RidgeEncoder(alphas=ALPHAS, cv=5).fit(A, Y)
    # one space: every candidate is gamma = 1, so the same kernels run on the same numbers
    np.testing.assert_array_equal(band.alphas_, ridge.alphas_)
    np.testing.assert_array_equal(band.coef_, ridge.coef_)
    np.testing.assert_array_equal(band.band_weights_, 1.0)
    np.testing.assert_allclose(band.best_cv_scores_, ridge.best_cv_scores_, rtol=1e-12)


def test_fixed_band_weights_are_ridge_on_rescaled_features(rng, x64):
    """Closed form: with gamma fixed, banded ridge is ridge on [sqrt(g1) A, sqrt(g2) B] and
    coef_i = sqrt(g_i) w_i; float64, so to ~1e3 eps of the coefficient scale."""
    A, B, Y = _two_spaces(rng)
    g = np.array([0.8, 0.2])
    band = BandedRidgeEncoder(alphas=ALPHAS, cv=5, n_iter=g[None]).fit([A, B], Y)
    Z = np.concatenate([np.sqrt(g[0]) * A, np.sqrt(g[1]) * B], 1)
    ridge = RidgeEncoder(alphas=ALPHAS, cv=5).fit(Z, Y)
    np.testing.assert_array_equal(band.alphas_, ridge.alphas_)
    scale = np.repeat(np.sqrt(g), [A.shape[1], B.shape[1]])[:, None]
    want = ridge.coef_ * scale
    np.testing.assert_allclose(band.coef_, want, atol=1e-9 * np.abs(want).max())
    # the closed form itself: (X^T X + diag(alpha / g_i)) coef = X^T y on centred data
    X = np.concatenate([A, B], 1)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    lam = np.repeat(band.alphas_[0] / g, [A.shape[1], B.shape[1]])
    direct = np.linalg.solve(Xc.T @ Xc + np.diag(lam), Xc.T @ Yc[:, 0])
    np.testing.assert_allclose(band.coef_[:, 0], direct, atol=1e-9 * np.abs(direct).max())
    np.testing.assert_allclose(band.band_alphas_[:, 0], band.alphas_[0] / g)


def test_split_scores_sum_to_the_joint_score(rng):
    A, B, Y = _two_spaces(rng, n=300)
    tr, te = slice(0, 200), slice(200, 300)
    enc = BandedRidgeEncoder(alphas=ALPHAS, cv=5, n_iter=8).fit([A[tr], B[tr]], Y[tr])
    parts = enc.predict([A[te], B[te]], split=True)
    joint = enc.predict([A[te], B[te]])
    # contributions plus the training mean of Y are the joint prediction
    np.testing.assert_allclose(parts.sum(0) + Y[tr].mean(0), joint, rtol=1e-5, atol=1e-5)
    split = enc.score([A[te], B[te]], Y[te], split=True)
    assert split.shape == (2, Y.shape[1])
    # shares sum to the R^2 of the test-centred joint prediction exactly (float64 algebra)
    Yc = Y[te] - Y[te].mean(0)
    Pc = joint - joint.mean(0)
    np.testing.assert_allclose(split.sum(0), r2(Yc, Pc), atol=1e-10)
    # and to the usual joint R^2 up to the mean offset n d^2 / SST (small here)
    offset = len(Yc) * (joint.mean(0) - Y[te].mean(0)) ** 2 / (Yc**2).sum(0)
    np.testing.assert_allclose(split.sum(0) - offset, enc.score_voxels([A[te], B[te]], Y[te]),
                               atol=1e-6)


def test_r2_split_against_himalaya():
    from himalaya.backend import set_backend
    from himalaya.scoring import r2_score_split

    set_backend("numpy")
    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 7))
    y -= y.mean(0)
    P = rng.standard_normal((3, 50, 7))
    P -= P.mean(1, keepdims=True)
    np.testing.assert_allclose(r2_split(y, P), r2_score_split(y, P), rtol=1e-12, atol=1e-12)


def test_attribution_on_synthetic_fmri_rois():
    """The synthetic dataset drives retinotopic ROIs by the oriented-energy features and
    category ROIs by the category features: band weights and split R^2 must say so."""
    from brainmodels.datasets import make_synthetic_fmri
    from brainmodels.datasets.synthetic import ground_truth_features

    ds = make_synthetic_fmri(n_stimuli=400, n_repeats=2, resolution_mm=8.0, seed=1)
    betas = ds["betas"].groupby("stimulus_id").mean().rename(stimulus_id="stimulus")
    kinds = ds["roi_kind"].values
    sel = np.flatnonzero(ds["noise_ceiling"].values > 0.5)
    Y = betas.isel(voxel=sel)
    X = stack_feature_spaces({s: ground_truth_features(ds, s)
                              for s in ("retinotopic", "category")})
    X = X.sel(stimulus=Y["stimulus"].values)
    assert set(X.coords) >= {"feature_space", "rf_x", "stimulus"}
    train, test = slice(0, 300), slice(300, 400)
    enc = BandedRidgeEncoder(alphas=np.logspace(-1, 5, 13), cv=5, n_iter=10)
    enc.fit(X.isel(stimulus=train), Y.isel(stimulus=train))
    assert enc.band_weights_.dims == ("feature_space", "voxel")
    split = enc.score(X.isel(stimulus=test), Y.isel(stimulus=test), split=True)
    assert split.dims == ("feature_space", "voxel")
    for kind in ("retinotopic", "category"):
        mask = kinds[sel] == kind
        assert mask.sum() >= 20, kind
        share = split.sel(feature_space=kind).values[mask]
        other = split.sel(feature_space=[k for k in ("retinotopic", "category") if k != kind]
                          ).values[0][mask]
        # most voxels of an ROI kind get most of their explained variance from their space
        assert np.mean(share > other) >= 0.9, kind
        assert np.median(enc.band_weights_.sel(feature_space=kind).values[mask]) > 0.5, kind


@pytest.fixture(scope="module")
def himalaya_banded():
    from himalaya.backend import set_backend
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score

    set_backend("numpy")
    rng = np.random.default_rng(11)
    A, B, Y = _two_spaces(rng, n=400, p=(10, 30), v=300, noise=1.0)
    A, B, Y = (a.astype(np.float32) for a in (A, B, Y))
    tr, te = slice(0, 300), slice(300, 400)
    cands = band_candidates(2, 12, seed=4)
    ref = GroupRidgeCV(groups=np.repeat([0, 1], [10, 30]), cv=KFold(5), fit_intercept=True,
                       solver_params=dict(n_iter=cands, alphas=ALPHAS, score_func=r2_score,
                                          progress_bar=False))
    ref.fit(np.concatenate([A[tr], B[tr]], 1), Y[tr])
    return A, B, Y, tr, te, cands, ref


def test_matches_himalaya_group_ridge_cv(himalaya_banded):
    """Same candidates and alphas, per-fold mean R^2 (himalaya's criterion): >= 95 % of voxels
    select the same (gamma, alpha); held-out R^2 within 1e-3 (issue criterion, float32 on
    both sides)."""
    A, B, Y, tr, te, cands, ref = himalaya_banded
    enc = BandedRidgeEncoder(alphas=ALPHAS, cv=5, n_iter=cands, cv_average="folds")
    enc.fit([A[tr], B[tr]], Y[tr])
    ref_gamma = np.exp(ref.deltas_) * ref.best_alphas_[None]  # deltas = log(gamma / alpha)
    same = (np.isclose(enc.alphas_, ref.best_alphas_, rtol=1e-4)
            & np.all(np.isclose(enc.band_weights_, ref_gamma, atol=1e-4), axis=0))
    assert same.mean() >= 0.95, same.mean()
    ours = r2(Y[te], enc.predict([A[te], B[te]]))
    theirs = r2(Y[te], ref.predict(np.concatenate([A[te], B[te]], 1)))
    assert np.max(np.abs(ours - theirs)) < 1e-3


def test_variance_partitioning_two_and_three_spaces():
    # two spaces: unique a = R2(ab) - R2(b), shared = R2(a) + R2(b) - R2(ab)
    parts = variance_partitioning({"a": 0.3, "b": 0.4, "a+b": 0.5})
    assert parts[("a",)] == pytest.approx(0.1)
    assert parts[("b",)] == pytest.approx(0.2)
    assert parts[("a", "b")] == pytest.approx(0.2)
    # three spaces built from known Venn regions: the regions come back
    regions = {("a",): 0.05, ("b",): 0.10, ("c",): 0.02, ("a", "b"): 0.07, ("a", "c"): 0.01,
               ("b", "c"): 0.03, ("a", "b", "c"): 0.04}
    scores = {}
    for k in range(1, 4):
        import itertools

        for S in itertools.combinations("abc", k):
            scores[frozenset(S)] = sum(v for T, v in regions.items() if set(T) & set(S))
    got = variance_partitioning(scores)
    for T, v in regions.items():
        assert got[T] == pytest.approx(v, abs=1e-12)
    # per-voxel arrays work the same
    arr = variance_partitioning({"a": np.array([0.3, 0.1]), "b": np.array([0.4, 0.1]),
                                 ("a", "b"): np.array([0.5, 0.2])})
    np.testing.assert_allclose(arr[("a", "b")], [0.2, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match=r"lacks the models of subsets \[\['a', 'b'\]\]"):
        variance_partitioning({"a": 0.1, "b": 0.2})


def test_stack_feature_spaces_keeps_coords_and_runs_travel(rng):
    n = 60
    run = np.repeat([1, 2, 3], 20)
    A = xr.DataArray(rng.standard_normal((n, 3)), dims=("time", "feature_a"),
                     coords={"run": ("time", run), "rf_x": ("feature_a", [0.1, 0.2, 0.3])})
    B = xr.DataArray(rng.standard_normal((n, 2)), dims=("time", "word"),
                     coords={"run": ("time", run), "word": ["cat", "dog"]})
    X = stack_feature_spaces({"pixels": A, "semantic": B})
    assert X.dims == ("time", "feature")
    assert list(X.feature_space.values) == ["pixels"] * 3 + ["semantic"] * 2
    np.testing.assert_array_equal(X.rf_x.values[:3], [0.1, 0.2, 0.3])
    assert np.isnan(X.rf_x.values[3:]).all()
    assert list(X.word.values) == ["", "", "", "cat", "dog"]
    np.testing.assert_array_equal(X.run.values, run)
    Y = xr.DataArray(X.values @ rng.standard_normal((5, 4)) + rng.standard_normal((n, 4)),
                     dims=("time", "voxel"))
    # cv="runs" finds the run coordinate of the stacked spaces
    enc = BandedRidgeEncoder(alphas=ALPHAS, cv="runs", n_iter=4).fit(X, Y)
    assert list(enc.band_weights_.feature_space.values) == ["pixels", "semantic"]
    with pytest.raises(ValueError, match="disagree on sample coordinate 'run'"):
        stack_feature_spaces({"a": A, "b": B.assign_coords(run=("time", run[::-1]))})


def test_bad_input_is_named(rng):
    A, B, Y = _two_spaces(rng, n=60, v=4)
    with pytest.raises(ValueError, match=r"Xs\['b'\] has 59 rows"):
        BandedRidgeEncoder(n_iter=2).fit({"a": A, "b": B[:59]}, Y)
    with pytest.raises(ValueError, match="with 2 columns; got shape"):
        BandedRidgeEncoder(n_iter=np.ones((3, 3))).fit([A, B], Y)
    with pytest.raises(ValueError, match="non-negative band weights"):
        BandedRidgeEncoder(n_iter=np.array([[1.0, -1.0]])).fit([A, B], Y)
    with pytest.raises(TypeError, match="Xs must be a list"):
        BandedRidgeEncoder().fit(A, Y)
    with pytest.raises(ValueError, match="`feature_space` coordinate"):
        BandedRidgeEncoder().fit(xr.DataArray(A, dims=("sample", "feature")), Y)
    enc = BandedRidgeEncoder(alphas=ALPHAS, n_iter=2).fit({"a": A, "b": B}, Y)
    with pytest.raises(ValueError, match=r"differ from those fitted, \['a', 'b'\]"):
        enc.predict({"b": B, "a": A})
    with pytest.raises(ValueError, match="must hold 2 feature spaces"):
        enc.predict([A])
    Yc = Y.copy()
    Yc[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"1 voxel\(s\) with zero variance"):
        BandedRidgeEncoder(n_iter=2).fit([A, B], Yc)
    dropped = BandedRidgeEncoder(alphas=ALPHAS, n_iter=2, drop_constant=True).fit([A, B], Yc)
    np.testing.assert_array_equal(dropped.constant_voxels_, [1])
    assert np.all(dropped.coef_[:, 1] == 0) and dropped.intercept_[1] == pytest.approx(3.0)


def test_same_seed_same_result_and_shared_weights(rng):
    A, B, Y = _two_spaces(rng, n=120, v=10)
    a = BandedRidgeEncoder(alphas=ALPHAS, n_iter=6, seed=3).fit([A, B], Y)
    b = BandedRidgeEncoder(alphas=ALPHAS, n_iter=6, seed=3).fit([A, B], Y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.candidates_, band_candidates(2, 6, seed=3))
    np.testing.assert_allclose(a.candidates_.sum(1), 1.0)
    np.testing.assert_array_equal(a.candidates_[0], [0.5, 0.5])
    shared = BandedRidgeEncoder(alphas=ALPHAS, n_iter=6, seed=3, per_voxel=False).fit([A, B], Y)
    assert np.unique(shared.alphas_).size == 1
    assert np.unique(shared.band_weights_, axis=1).shape[1] == 1
    # the shared choice maximises the mean CV score over voxels among the candidates tried
    assert shared.best_cv_scores_.mean() == pytest.approx(
        shared.cv_scores_.mean(1).max(), rel=1e-12)


# ----------------------------------------------------------------------------- hyper-gradient


def test_hyper_gradient_is_the_finite_difference_gradient_primal_and_dual(x64):
    """jax.grad through the ridge solve (implicit differentiation) against central
    differences of the held-out error, float64: agreement to ~1e-6 relative (the difference
    quotient's own truncation error at h = 1e-5 is ~h^2)."""
    import jax
    import jax.numpy as jnp

    from brainmodels.encoders._banded_hyper import _fold_sse, _system

    rng = np.random.default_rng(5)
    sizes = (3, 5)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    space = jnp.asarray(np.repeat([0, 1], sizes))
    for n_tr in (30, 6):  # primal (p=8 < 30), dual (p=8 > 6)
        X = rng.standard_normal((n_tr + 10, 8))
        y = X @ rng.standard_normal(8) + rng.standard_normal(n_tr + 10)
        Xtr, Xte = X[:n_tr], X[n_tr:]
        dual = n_tr < 8
        system = _system(Xtr, Xte, bounds, dual, np.float64)
        theta = jnp.asarray([0.3, 1.7])
        ytr, yte = jnp.asarray(y[:n_tr]), jnp.asarray(y[n_tr:])

        def f(t, ytr=ytr, yte=yte, system=system, dual=dual):
            return _fold_sse(t, ytr, yte, system, space, dual)

        grad = np.asarray(jax.grad(f)(theta))
        h = 1e-5
        fd = [(f(theta.at[k].add(h)) - f(theta.at[k].add(-h))) / (2 * h) for k in range(2)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6)
        # and the solution is the closed form of its penalties
        lam = np.repeat(np.exp(np.asarray(theta)), sizes)
        beta = np.linalg.solve(Xtr.T @ Xtr + np.diag(lam), Xtr.T @ y[:n_tr])
        pred_err = np.sum((y[n_tr:] - Xte @ beta) ** 2)
        assert float(f(theta)) == pytest.approx(pred_err, rel=1e-10)


def test_hyper_gradient_refines_the_random_search(rng):
    """One uniform candidate only: the random search can just pick alpha; the refinement must
    find the skewed band weights the data need (space A carries all the signal), never end
    with a worse CV score than its start, and predict held-out data better."""
    A, B, Y = _two_spaces(rng, n=400, p=(5, 30), v=20, noise=1.0)
    Y = Y[:, :10]  # voxels driven by A only
    tr, te = slice(0, 300), slice(300, 400)
    kw = dict(alphas=ALPHAS, cv=5, n_iter=1)
    rs = BandedRidgeEncoder(**kw).fit([A[tr], B[tr]], Y[tr])
    hg = BandedRidgeEncoder(solver="hyper_gradient", hyper_steps=30, **kw).fit(
        [A[tr], B[tr]], Y[tr])
    assert np.all(hg.best_cv_scores_ >= rs.best_cv_scores_ - 1e-5)
    assert np.mean(hg.best_cv_scores_ - rs.best_cv_scores_) > 1e-3
    assert np.median(hg.band_weights_[0]) > 0.9  # A's penalty far below B's
    held_rs = r2(Y[te], rs.predict([A[te], B[te]]))
    held_hg = r2(Y[te], hg.predict([A[te], B[te]]))
    assert np.mean(held_hg) > np.mean(held_rs)
    np.testing.assert_allclose(hg.band_weights_.sum(0), 1.0, rtol=1e-9)
    with pytest.raises(ValueError, match="needs scoring='r2'"):
        BandedRidgeEncoder(solver="hyper_gradient", scoring="correlation").fit([A, B], Y)
    with pytest.raises(ValueError, match="not cv='loo'"):
        BandedRidgeEncoder(solver="hyper_gradient", cv="loo").fit([A, B], Y)
