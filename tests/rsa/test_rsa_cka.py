"""CKA against the reference formulas of Kornblith et al. (2019) and Song et al. (2012)."""

from __future__ import annotations

import numpy as np
import pytest

from brainmodels.rsa import cka


def _ref_linear(x, y):
    """Kornblith et al. 2019, eq. for linear CKA in feature space."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def _hsic_biased(k, l_):
    n = k.shape[0]
    h = np.eye(n) - 1.0 / n
    return np.trace(k @ h @ l_ @ h) / (n - 1) ** 2


def _hsic_unbiased(k, l_):
    """Song et al. (2012), eq. 5."""
    n = k.shape[0]
    k, l_ = k.copy(), l_.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l_, 0)
    one = np.ones(n)
    term = np.trace(k @ l_) + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2)) \
        - 2.0 / (n - 2) * one @ k @ l_ @ one
    return term / (n * (n - 3))


def _ref_cka(k, l_, hsic):
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def _rbf(x, bw):
    d2 = np.sum((x[:, None] - x[None]) ** 2, -1)
    return np.exp(-d2 / (2 * bw**2 * np.median(d2)))


@pytest.fixture(scope="module")
def reps():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 12))
    y = x[:, :6] @ rng.standard_normal((6, 9)) + 0.5 * rng.standard_normal((40, 9))
    return x, y


def test_linear_matches_reference(reps, x64):
    x, y = reps
    # float64 vs float64: 1e-10
    assert cka(x, y) == pytest.approx(_ref_linear(x, y), abs=1e-10)
    assert cka(x, y) == pytest.approx(_ref_cka(x @ x.T, y @ y.T, _hsic_biased), abs=1e-10)


def test_debiased_matches_song_et_al(reps, x64):
    x, y = reps
    xc, yc = x - x.mean(0), y - y.mean(0)
    ref = _ref_cka(xc @ xc.T, yc @ yc.T, _hsic_unbiased)
    assert cka(x, y, debiased=True) == pytest.approx(ref, abs=1e-10)


def test_rbf_matches_reference(reps, x64):
    x, y = reps
    for bw in (0.5, 1.0):
        ref = _ref_cka(_rbf(x, bw), _rbf(y, bw), _hsic_biased)
        assert cka(x, y, "rbf", bandwidth=bw) == pytest.approx(ref, abs=1e-10)


def test_linear_is_the_wide_rbf_limit(reps, x64):
    x, y = reps
    # K = exp(-d^2 / 2s^2) = 1 - d^2 / 2s^2 + O(s^-4): centred, the first order term is
    # proportional to the linear Gram matrix, so CKA_rbf -> CKA_linear with error O(s^-2)
    assert cka(x, y, "rbf", bandwidth=1e3) == pytest.approx(cka(x, y), abs=1e-5)


def test_invariances(reps):
    x, y = reps
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    base = cka(x, y)
    # float32 Gram matrices: 1e-5
    assert cka(3.7 * x @ q + 5.0, y) == pytest.approx(base, abs=1e-5)
    assert cka(x, x @ q) == pytest.approx(1.0, abs=1e-5)
    assert cka(x, rng.standard_normal((40, 12))) < 0.6
    assert cka(x, 2 * x, debiased=True) == pytest.approx(1.0, abs=1e-5)


def test_stacks_and_lists(reps):
    x, y = reps
    out = cka(np.stack([x, 2 * x]), [y, x[:, :3]])
    assert out.shape == (2, 2)
    assert out[1, 0] == pytest.approx(cka(x, y), abs=1e-5)
    assert out[0, 1] == pytest.approx(cka(x, x[:, :3]), abs=1e-5)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same stimuli"):
        cka(rng.random((10, 3)), rng.random((11, 3)))
    with pytest.raises(ValueError, match="kernel must be one of"):
        cka(rng.random((10, 3)), rng.random((10, 3)), "poly")
    with pytest.raises(ValueError, match="NaN"):
        cka(np.full((10, 3), np.nan), rng.random((10, 3)))
    with pytest.raises(ValueError, match="at least 4"):
        cka(rng.random((3, 3)), rng.random((3, 3)), debiased=True)
