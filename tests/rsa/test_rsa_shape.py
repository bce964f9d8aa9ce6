"""Generalized shape metrics: invariances, metric axioms and the CCA closed form."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brainmodels.rsa import pairwise_distances, shape_distance


def _orth(rng, n):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("score", ["angular", "euclidean"])
def test_zero_for_rotated_copy(alpha, score):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 10))
    # float32 SVD: arccos near 1 amplifies 1e-7 errors to ~5e-4 rad; euclidean ~1e-5
    assert shape_distance(x, x @ _orth(rng, 10) + 3.0, alpha, score) < 2e-3
    assert shape_distance(x, rng.standard_normal((80, 10)), alpha, score) > 0.1


def test_symmetric_and_alignment_recovers_rotation(x64):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    assert shape_distance(x, y) == pytest.approx(shape_distance(y, x), abs=1e-12)
    q = _orth(rng, 6)
    d, t = shape_distance(x, x @ q, return_alignment=True)
    assert d < 1e-6
    np.testing.assert_allclose(t, q.T, atol=1e-8)  # (X Q) T = X


def test_alpha0_is_mean_canonical_correlation_angle(x64):
    # closed form: with X, Y centred and Qx, Qy orthonormal bases of their column spaces, the
    # canonical correlations are the singular values of Qx^T Qy; fully whitened Procrustes
    # gives arccos(mean canonical correlation) (Williams et al. 2021, sec. 3.2)
    rng = np.random.default_rng(2)
    z = rng.standard_normal((100, 4))
    x = z @ rng.standard_normal((4, 5)) + 0.5 * rng.standard_normal((100, 5))
    y = z @ rng.standard_normal((4, 5)) + 0.8 * rng.standard_normal((100, 5))
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    rho = np.linalg.svd(qx.T @ qy, compute_uv=False)
    assert shape_distance(x, y, alpha=0.0) == pytest.approx(np.arccos(rho.mean()), abs=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), alpha=st.sampled_from([0.0, 0.5, 1.0]),
       score=st.sampled_from(["angular", "euclidean"]))
def test_triangle_inequality(seed, alpha, score):
    rng = np.random.default_rng(seed)
    a, b, c = (rng.standard_normal((30, 5)) @ rng.standard_normal((5, 5)) for _ in range(3))
    dab, dbc, dac = (shape_distance(p, q, alpha, score) for p, q in ((a, b), (b, c), (a, c)))
    assert dac <= dab + dbc + 1e-4  # float32 slack


def test_permutation_group():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 7))
    perm = rng.permutation(7)
    assert shape_distance(x, x[:, perm], group="permutation") < 2e-3
    y = x @ _orth(rng, 7)
    # permutations are a subgroup of the orthogonal group: the distance can only grow
    assert shape_distance(x, y, group="permutation") >= shape_distance(x, y) - 1e-5
    d, t = shape_distance(x, x[:, perm], group="permutation", return_alignment=True)
    np.testing.assert_allclose(x[:, perm] @ t, x, atol=1e-12)


def test_pairwise_distances_match_single_calls():
    rng = np.random.default_rng(4)
    reps = {f"net{i}": rng.standard_normal((40, 3 + i)) for i in range(4)}
    out = pairwise_distances(reps, "angular", alpha=0.5)
    assert out.dims == ("network_a", "network_b")
    np.testing.assert_allclose(out.values, out.values.T)
    np.testing.assert_allclose(np.diag(out.values), 0.0)
    assert out.sel(network_a="net1", network_b="net3").item() == pytest.approx(
        shape_distance(reps["net1"], reps["net3"], 0.5), abs=1e-5)
    perm = pairwise_distances(list(reps.values()), "euclidean", group="permutation")
    assert perm.values[0, 2] == pytest.approx(
        shape_distance(reps["net0"], reps["net2"], 1.0, "euclidean", group="permutation"),
        abs=1e-5)


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same stimuli"):
        shape_distance(rng.random((10, 3)), rng.random((12, 3)))
    with pytest.raises(ValueError, match="alpha must be in"):
        shape_distance(rng.random((10, 3)), rng.random((10, 3)), alpha=1.5)
    with pytest.raises(ValueError, match="at least 3"):
        shape_distance(rng.random((2, 3)), rng.random((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        shape_distance(np.full((10, 3), np.nan), rng.random((10, 3)))
    with pytest.raises(ValueError, match="score must be one of"):
        shape_distance(rng.random((10, 3)), rng.random((10, 3)), score="cosine")
