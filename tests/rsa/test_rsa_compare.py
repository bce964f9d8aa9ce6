"""RDM comparisons against rsatoolbox (float64), including ties, stacks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from rsatoolbox.rdm import RDMs, compare

from brainmodels.rsa import compare_rdms
from brainmodels.rsa._utils import to_square

METHODS = ["cosine", "corr", "spearman", "tau-a", "rho-a", "corr_cov", "cosine_cov"]
# float64 vs rsatoolbox: differences are summation order only (issue asks 1e-6)
TOL64 = 1e-10


@pytest.fixture(scope="module")
def stacks():
    rng = np.random.default_rng(7)
    k = 12
    n = k * (k - 1) // 2
    a = rng.random((5, n))
    a[1] = rng.integers(0, 3, n)  # a categorical model with massive ties
    a[2] = np.round(a[2], 1)  # some ties
    a[3] = a[0] + 0.1 * rng.standard_normal(n)
    b = rng.random((4, n))
    b[2] = rng.integers(0, 2, n)
    b[3] = np.round(a[0], 1)
    return a, b


@pytest.mark.parametrize("method", METHODS)
def test_compare_matches_rsatoolbox(stacks, method, x64):
    a, b = stacks
    ref = compare(RDMs(a), RDMs(b), method=method)
    np.testing.assert_allclose(compare_rdms(a, b, method), ref, atol=TOL64, rtol=0)


@pytest.mark.parametrize("method", ["cosine", "corr", "spearman"])
def test_long_rdms_in_column_blocks_match_rsatoolbox(method, x64):
    # 250 conditions: 31,125 pairs, past methods.GRAM_BLOCK x 4, so the product is summed over
    # column blocks (with a last, partial block); only the summation order differs
    from brainmodels.rsa import methods

    rng = np.random.default_rng(11)
    n = 250 * 249 // 2
    assert n >= 4 * methods.GRAM_BLOCK and n % methods.GRAM_BLOCK
    a, b = rng.random((3, n)), rng.random((4, n))
    b[0] = a[0] + 0.3 * rng.standard_normal(n)
    ref = compare(RDMs(a), RDMs(b), method=method)
    np.testing.assert_allclose(compare_rdms(a, b, method), ref, atol=TOL64, rtol=0)


@pytest.mark.parametrize("method", ["corr_cov", "cosine_cov"])
def test_whitened_with_pattern_variances(stacks, method, x64):
    a, b = stacks
    sigma = np.random.default_rng(1).random(12) + 0.5
    ref = compare(RDMs(a), RDMs(b), method=method, sigma_k=sigma)
    np.testing.assert_allclose(compare_rdms(a, b, method, sigma_k=sigma), ref, atol=TOL64)


@pytest.mark.parametrize("method", ["corr_cov", "cosine_cov"])
def test_whitened_with_full_pattern_covariance(stacks, method, x64):
    # a (K, K) sigma_k: the exact V^-1 weighting, V = Xi o Xi, Xi = C sigma_k C'. Against
    # the dense solve to round-off (1e-10); rsatoolbox solves it by conjugate gradients with
    # scipy's default rtol 1e-5, so it agrees to ~1e-5 only
    from rsatoolbox.rdm.compare import _get_v

    a, b = stacks
    k = 12
    rng = np.random.default_rng(3)
    m = rng.standard_normal((k, k))
    sigma = m @ m.T / k + np.eye(k)
    ours = compare_rdms(a, b, method, sigma_k=sigma)
    v = _get_v(k, sigma).toarray()
    va, vb = (a, b) if method == "cosine_cov" else (a - a.mean(1, keepdims=True),
                                                   b - b.mean(1, keepdims=True))
    wa, wb = np.linalg.solve(v, va.T).T, np.linalg.solve(v, vb.T).T
    exact = (va @ wb.T) / np.sqrt(np.outer(np.sum(va * wa, 1), np.sum(vb * wb, 1)))
    np.testing.assert_allclose(ours, exact, atol=1e-10, rtol=0)
    ref = compare(RDMs(a), RDMs(b), method=method, sigma_k=sigma)
    np.testing.assert_allclose(ours, ref, atol=2e-5, rtol=0)
    with pytest.raises(ValueError, match="positive definite"):
        compare_rdms(a, b, method, sigma_k=-np.eye(k))
    with pytest.raises(ValueError, match="whitened methods"):
        compare_rdms(a, b, "spearman", sigma_k=sigma)


def test_pearson_alias_and_square_input(stacks, x64):
    a, b = stacks
    sq = to_square(a)
    np.testing.assert_allclose(compare_rdms(sq, b, "pearson"), compare_rdms(a, b, "corr"),
                               atol=1e-12)
    assert isinstance(compare_rdms(a[0], b[0], "tau-a"), float)


def test_tau_a_large_with_ties_matches_rsatoolbox(x64):
    # K = 60 -> 1770 pairs: exercises the blocked inversion count across many blocks
    rng = np.random.default_rng(11)
    n = 60 * 59 // 2
    a = np.stack([rng.random(n), rng.integers(0, 4, n), np.round(rng.random(n), 2)])
    b = np.stack([a[0] + rng.random(n), rng.integers(0, 2, n)])
    ref = compare(RDMs(a), RDMs(b), method="tau-a")
    np.testing.assert_allclose(compare_rdms(a, b, "tau-a"), ref, atol=TOL64, rtol=0)


def test_tau_a_host_kernel_equals_array_kernel_and_scipy(x64):
    # the CPU path (numba bitset/Fenwick count) and the accelerator / in-jit path (blocked
    # array count) count the same integers: equal to float64 rounding. K = 130 -> 8385 pairs
    # (131 bitset words, 8 Fenwick levels); without ties tau-a is scipy's tau-b.
    import scipy.stats

    from brainmodels.rsa import _host
    from brainmodels.rsa._kendall import _orders_host, _tau_block, _tau_orders_jit

    rng = np.random.default_rng(5)
    n = 130 * 129 // 2
    a = np.stack([rng.random(n), rng.integers(0, 5, n).astype(float), rng.random(n)])
    b = np.stack([rng.random(n), a[2] + 0.3 * rng.random(n), np.round(rng.random(n), 2)])
    host = compare_rdms(a, b, "tau-a")
    oa, ob = _orders_host(a), _orders_host(b)
    array = _tau_orders_jit(oa, ob, 3, 3, np.dtype(float), _tau_block(n))
    np.testing.assert_allclose(host, array, atol=1e-12, rtol=0)
    np.testing.assert_allclose(host[0, 0], scipy.stats.kendalltau(a[0], b[0]).statistic,
                               atol=1e-12)
    # the raw count against the O(n^2) definition on a small permutation
    pi = rng.permutation(300).astype(np.int32)
    brute = int(np.sum(np.triu(pi[:, None] > pi[None, :], 1)))
    ident = np.arange(300, dtype=np.int32)[None]
    assert _host.inversions(ident, pi[None])[0, 0] == brute
    # reversing the tie runs of a stable order = a stable sort with ties in reverse order
    from brainmodels.rsa._kendall import _reverse_tie_runs

    tied = rng.integers(0, 6, (3, 200)).astype(float)
    fwd = np.argsort(tied, axis=1, kind="stable")
    np.testing.assert_array_equal(_reverse_tie_runs(tied, fwd),
                                  199 - np.argsort(tied[:, ::-1], axis=1, kind="stable"))
    # the host ranks (spearman, rho-a) are scipy's average ranks, ties included: exact
    v = np.stack([a[1], b[2], a[0]])
    np.testing.assert_array_equal(_host.average_ranks(v), scipy.stats.rankdata(v, axis=1))


@pytest.mark.parametrize("method", ["tau-a", "corr_cov", "cosine_cov"])
def test_small_numpy_paths_equal_the_compiled_kernels(stacks, method, x64, monkeypatch):
    # below a size threshold tau-a counts sign products (one matmul) and the whitened methods
    # take their row sums from a sparse product (no numba import, no compilation): the same
    # sums as the numba kernels, so equal to rounding (1e-12: a few float64 eps of sums of
    # ~100 terms). Thresholds at 0 force the kernels.
    from brainmodels.rsa import _host, _small, _whitened

    a, b = stacks
    sigma = np.linspace(0.5, 2.0, 12)
    kw = {"sigma_k": sigma} if method != "tau-a" else {}
    small = compare_rdms(a, b, method, **kw)
    monkeypatch.setattr(_small, "SMALL_TAU_PAIRS", 0)
    monkeypatch.setattr(_whitened, "_SPARSE_ROW_SUMS", 0)
    monkeypatch.setattr(_whitened, "SMALL_ENTRIES", 0)  # the expansion, not explicit centring
    np.testing.assert_allclose(small, compare_rdms(a, b, method, **kw), atol=1e-12, rtol=0)
    for u in (np.ones(12), 1.0 / sigma):
        for mine, numba in zip(_whitened._row_sums_sparse(a, u), _host.row_sums(a, u),
                               strict=True):
            np.testing.assert_allclose(mine, numba, rtol=1e-13, atol=1e-13)


def test_ranks_are_scipys_average_ranks():
    # numpy ranks (argsort, then the tie groups): scipy's rankdata exactly, ties included
    import scipy.stats

    from brainmodels.rsa import _host

    rng = np.random.default_rng(3)
    v = np.stack([rng.random(300), rng.integers(0, 4, 300), np.round(rng.random(300), 1),
                  np.zeros(300), np.arange(300.0)[::-1]])
    np.testing.assert_array_equal(_host.average_ranks(v), scipy.stats.rankdata(v, axis=1))
    np.testing.assert_array_equal(_host.average_ranks(v, 2.5),
                                  scipy.stats.rankdata(v, axis=1) - 2.5)


@pytest.mark.parametrize("method", ["corr_cov", "cosine_cov"])
def test_whitened_host_expansion_equals_explicit_double_centring(method, x64):
    # CPU path: products of the raw vectors plus row-sum corrections (compare.py); the jitted
    # path double-centres explicitly. The expansion loses ~(|D| / |W|)^2 eps per product
    # (|D|: the entries' norm, |W|: the double-centred part's); the CPU path falls back to
    # the explicit one above a ratio of 1e6, which bounds the difference at ~1e6 eps ~ 2e-10
    # per product: 1e-9 (the issue asks 1e-6). Here b[2] (mean/std ~ 200) reaches ~2e-11.
    # A near-constant RDM (mean/std ~ 1e4) takes the explicit path and agrees exactly.
    from brainmodels.rsa._whitened import corr_cov as _corr_cov
    from brainmodels.rsa._whitened import cosine_cov as _cosine_cov
    from brainmodels.rsa._whitened import whitened_expansion as _cov_host
    from brainmodels.rsa._whitened import whitened_host

    rng = np.random.default_rng(9)
    k = 40
    n = k * (k - 1) // 2
    a = 10 + rng.random((4, n))
    b = np.stack([rng.random(n), rng.integers(0, 3, n).astype(float), 5 + 0.1 * a[0]])
    sigma = rng.random(k) + 0.5
    jitted = {"corr_cov": _corr_cov, "cosine_cov": _cosine_cov}[method]
    for s in (np.ones(k), sigma):
        host = _cov_host(a, b, np.sqrt(s), center=method == "corr_cov")
        explicit = np.asarray(jitted(a, b, np.sqrt(s)))
        np.testing.assert_allclose(host, explicit, atol=1e-9, rtol=0)
        # small stacks build the double-centred vectors in numpy: the jitted path's arithmetic
        small = whitened_host(a, b, np.sqrt(s), center=method == "corr_cov")
        np.testing.assert_allclose(small, explicit, atol=1e-13, rtol=0)
        np.testing.assert_allclose(compare_rdms(a, b, method, sigma_k=s), explicit,
                                   atol=1e-9, rtol=0)
    a[2] = 7.0 + 1e-3 * rng.random(n)
    assert _cov_host(a, b, np.ones(k), center=True) is None
    np.testing.assert_allclose(compare_rdms(a, b, method),
                               np.asarray(jitted(a, b, np.ones(k))), atol=1e-12, rtol=0)


def test_tau_a_float32_default(stacks):
    a, b = stacks
    ref = compare(RDMs(a), RDMs(b), method="tau-a")
    # integer counts, one float32 division: relative error <= 1e-7
    np.testing.assert_allclose(compare_rdms(a, b, "tau-a"), ref, atol=1e-6)


def test_dataarray_stacks_give_labelled_matrix(stacks):
    a, b = stacks
    da = xr.DataArray(a, dims=("layer", "pair"), coords={"layer": list("abcde")})
    db = xr.DataArray(b, dims=("roi", "pair"), coords={"roi": ["V1", "V2", "V3", "V4"]})
    out = compare_rdms(da, db, "spearman")
    assert out.dims == ("layer", "roi") and list(out.roi.values) == ["V1", "V2", "V3", "V4"]
    np.testing.assert_allclose(out.values, compare(RDMs(a), RDMs(b), "spearman"), atol=1e-5)


def test_invariances(stacks):
    a, b = stacks
    # cosine / pearson / rank methods are invariant to positive scaling (and shift for
    # pearson / ranks); float32 -> 1e-5
    for method, f in [("cosine", lambda v: 3 * v), ("corr", lambda v: 3 * v + 2),
                      ("spearman", lambda v: np.exp(v)), ("tau-a", lambda v: v**3)]:
        np.testing.assert_allclose(compare_rdms(f(a), b, method), compare_rdms(a, b, method),
                                   atol=1e-5)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.ones(10), np.ones(15), "same conditions"),
        (np.ones(1), np.ones(1), "at least 3"),
        (np.array([1.0, np.nan, 2.0]), np.ones(3), "NaN"),
        (np.ones(7), np.ones(7), "K \\(K - 1\\) / 2"),
    ],
)
def test_bad_input_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        compare_rdms(a, b, "corr")


def test_unknown_method_and_constant_rdm():
    with pytest.raises(ValueError, match="method must be one of"):
        compare_rdms(np.ones(3), np.ones(3), "kendall-b")
    with pytest.raises(ValueError, match="constant RDM"):
        compare_rdms(np.ones(3), np.arange(3.0), "corr")


def _square_rdm(rng, k=15):
    d = rng.random((k, k))
    d = d + d.T
    np.fill_diagonal(d, 0.0)
    return d


def test_similarity_matrix_is_refused_with_the_fix():
    """np.corrcoef output (diagonal 1) used to be read as 15 condensed vectors and return a
    15 x 15 array of numbers without a word."""
    rng = np.random.default_rng(0)
    sim = np.corrcoef(rng.standard_normal((15, 30)))
    with pytest.raises(ValueError, match=r"\(15, 15\).*diagonal is not zero.*1 - similarity"):
        compare_rdms(sim, sim, "corr")
    assert np.isclose(compare_rdms(1 - sim, 1 - sim, "corr"), 1.0)


def test_slightly_asymmetric_square_is_refused():
    rng = np.random.default_rng(1)
    d = _square_rdm(rng)
    d[0, 1] += 0.05
    with pytest.raises(ValueError, match=r"not symmetric.*max \|D - D\^T\|.*layout='condensed'"):
        compare_rdms(d, _square_rdm(rng), "corr")
    ok = d.copy()
    ok[0, 1] = d[1, 0] * (1 + 1e-7)  # float round-off passes
    assert np.isfinite(compare_rdms(ok, _square_rdm(rng), "corr"))


def test_square_shaped_stack_of_condensed_vectors_needs_the_layout():
    """Three 3-condition RDMs stacked as rows are a (3, 3) array: read as square (refused,
    with the spelling that works), and as intended with layout='condensed' or a 'pair' dim."""
    rng = np.random.default_rng(2)
    stack = rng.random((3, 3)) + 0.1
    with pytest.raises(ValueError, match="layout='condensed'"):
        compare_rdms(stack, stack, "corr")
    got = compare_rdms(stack, stack, "corr", layout="condensed")
    assert got.shape == (3, 3) and np.allclose(np.diag(got), 1.0)
    labelled = xr.DataArray(stack, dims=("model", "pair"))
    np.testing.assert_allclose(compare_rdms(labelled, labelled, "corr").values, got)
    with pytest.raises(ValueError, match="contradicts"):
        compare_rdms(labelled, labelled, "corr", layout="square")
    with pytest.raises(ValueError, match="layout must be one of"):
        compare_rdms(stack, stack, "corr", layout="upper")


def test_mismatch_error_names_the_shapes():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match=r"shape \(15, 15\).*shape \(12, 12\)"):
        compare_rdms(_square_rdm(rng, 15), _square_rdm(rng, 12), "corr")
    with pytest.raises(ValueError, match=r"shape \(7,\), read as condensed"):
        compare_rdms(np.ones(7), np.ones(7), "corr")
