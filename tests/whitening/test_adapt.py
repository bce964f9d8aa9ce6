"""Adaptation in use: context switches, ill-conditioned inputs (g >= 0 against free gains),
the local (convolutional) variant on 1/f-noise images, many circuits in one vmapped call."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from brainmodels import whitening as wh
from brainmodels.whitening import adaptation as adapt_module


def _rotated(rng, spectrum):
    q, _ = np.linalg.qr(rng.standard_normal((len(spectrum), len(spectrum))))
    return (q * np.asarray(spectrum)) @ q.T


def _samples(rng, c, n):
    return rng.standard_normal((n, c.shape[0])) @ np.linalg.cholesky(c).T


def test_context_switch_rewhitens_with_gains_only():
    """Two contexts (condition numbers 4 and 10), 4 seeds in one vmapped call per context,
    lr 0.05 decaying as 1/(1 + 0.005 t), batches of 50: the switch lifts the error above 0.3,
    and within 10,000 samples it is back below the paper's threshold 0.1, ending below it;
    W is never changed, only g."""
    W = wh.random_frame(3, 12, key=jax.random.key(0))
    w_before = np.array(W)
    covs = np.stack([wh.random_covariance(3, 4.0, key=jax.random.key(1)),
                     wh.random_covariance(3, 10.0, key=jax.random.key(2))])
    ds = wh.switch_contexts(W, covs, n_samples=100_000, lr=0.05, batch_size=50,
                            lr_decay=0.005, seeds=range(4), n_records=200)
    print("samples to re-whiten (context, seed):", ds.samples_to_threshold.values.tolist())
    assert ds.samples_to_threshold.dims == ("context", "seed")
    assert float(ds.samples_to_threshold.max()) <= 10_000
    end_a = ds.gains.isel(context=0).values
    lifted = [wh.whitening_error(wh.output_covariance(W, g, covs[1])) for g in end_a]
    assert min(lifted) > 0.3
    assert float(ds.error.isel(step=199).max()) < 0.1 and float(ds.error.isel(step=-1).max()) < 0.1
    np.testing.assert_array_equal(np.asarray(W), w_before)


def test_nonneg_gains_stable_on_ill_conditioned_inputs(x64, rng):
    """Input covariance of condition number 1e3 (variances 10^-1.5 .. 10^1.5), sample by sample
    (Duong et al. 2023, Sec. 5). Free gains go negative to amplify the weak directions and,
    from lr = 0.05, drive M = I + W diag(g) W^T indefinite (the recurrent circuit is unstable);
    with g >= 0, M >= I at every lr and the strong directions are whitened."""
    n = 4
    c = _rotated(rng, np.logspace(-1.5, 1.5, n))
    assert np.linalg.cond(c) == pytest.approx(1e3)
    W = wh.random_frame(n, 20, key=jax.random.key(1), dtype=np.float64)
    X = _samples(rng, c, 20_000)
    table = {}
    for lr in (0.01, 0.05, 0.2):
        for nonneg in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = wh.adapt(W, X, lr=lr, batch_size=1, nonneg=nonneg, cov=c)
            table[lr, nonneg] = (float(res.min_eigenvalue.min()), res.attrs["stable"],
                                 res.gains.values)
    print("lr, nonneg: min eig of M, stable", {k: v[:2] for k, v in table.items()})
    assert all(table[lr, True][1] and table[lr, True][0] >= 1 - 1e-12 for lr in (0.01, 0.05, 0.2))
    assert table[0.01, False][1]  # small lr: the free circuit is still stable ...
    assert not table[0.05, False][1] and not table[0.2, False][1]  # ... larger ones are not
    lam, u = np.linalg.eigh(c)
    c_rr = np.asarray(wh.output_covariance(W, table[0.2, True][2], c))
    strong = u[:, -1] @ c_rr @ u[:, -1]  # input variance 31.6 -> ~1
    print("nonneg output variance along the strongest input direction", strong)
    # batch-1 SGD at lr 0.2 on a variance of 31.6 is noisy: shrunk > 10x (1.7 seen), not exactly 1
    assert strong < 0.1 * lam[-1]
    # g >= 0 gives ||M^-1|| <= 1, so sigma_i(M^-1 C^1/2) <= sigma_i(C^1/2): every output
    # eigenvalue is at most the matching input one -- nothing is amplified (weak ones neither)
    out = np.linalg.eigvalsh(c_rr)
    print("output spectrum", out, "input", lam)
    assert np.all(out <= lam * (1 + 1e-9))
    with pytest.warns(RuntimeWarning, match="lost positive definiteness"):
        wh.adapt(W, X, lr=0.2, batch_size=1, cov=c)


def test_stability_verdict_does_not_depend_on_how_often_it_is_recorded(x64, rng):
    """At lr 0.05 the free circuit's M dips below 0 only briefly (a few hundred samples of
    20,000). Recording 100 or 10,000 times must give the same verdict and the same minimum: the
    minimum is taken over every update, not sampled at the records (sampled, 100 records
    reported this run stable, min eigenvalue 0.44)."""
    c = _rotated(rng, np.logspace(-1.5, 1.5, 4))
    W = wh.random_frame(4, 20, key=jax.random.key(1), dtype=np.float64)
    X = _samples(rng, c, 20_000)
    runs = {}
    for n_records in (1, 100, 20_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = wh.adapt(W, X, lr=0.05, batch_size=1, cov=c, n_records=n_records)
        runs[n_records] = (res.attrs["stable"], float(res.min_eigenvalue.min()))
    print("n_records: (stable, min eigenvalue of M)", runs)
    assert {v[0] for v in runs.values()} == {False}
    lows = [v[1] for v in runs.values()]
    # the same updates in the same order, float64: only the scan's blocking differs
    assert max(lows) - min(lows) <= 1e-9 * max(1.0, abs(min(lows)))
    # offline (expected updates) likewise: 1 record or one per iteration, same minimum
    off = [float(wh.adapt_offline(W, c, lr=0.5, steps=200, n_records=r).min_eigenvalue.min())
           for r in (1, 200)]
    assert off[0] == pytest.approx(off[1], abs=1e-12)


def test_local_frame_whitens_pink_noise_patches_locally(x64):
    """5 x 5 patches of 1/f-noise images, frame of pixels + pixel pairs in a 2 x 2 window
    (8-neighbourhood): the population (offline) fixed point makes the pixel variances 1 and
    every neighbour correlation 0 (to 1e-8), while correlations beyond the window remain."""
    imgs = wh.pink_noise_images(100, 32, key=jax.random.key(0))
    patches = wh.image_patches(imgs, 5, key=jax.random.key(1), n_patches=20_000)
    W = wh.local_frame(5, 5, window=2, dtype=np.float64)
    assert W.shape == (25, 25 + 2 * 20 + 2 * 16)
    c = patches.T @ patches / len(patches)
    before = wh.local_error(c, 5, 5, 2)
    res = wh.adapt_offline(W, c, lr=0.1, steps=1000, full=False, n_records=10)
    c_rr = np.asarray(wh.output_covariance(W, res.gains.values, c))
    after = wh.local_error(c_rr, 5, 5, 2)
    print(f"local error: input {before:.3f}, adapted {after:.2e}; global {float(res.error[-1]):.2f}")
    assert before > 0.5 and after < 1e-8
    assert wh.whitening_error(c_rr) > 0.3  # whitened locally, not globally


@pytest.mark.slow
def test_local_frame_online_on_pink_noise_patches():
    """The same frame adapted online (float32, 2e5 patches, batches of 200, lr 0.1 decaying as
    1/(1 + 0.01 t)): the local error falls from 0.69 to < 0.1 (0.050 seen; a constant lr leaves
    0.16, the SGD noise floor of lr / batch)."""
    imgs = wh.pink_noise_images(100, 32, key=jax.random.key(0))
    W = wh.local_frame(5, 5, window=2)
    before = 0.687
    more = wh.image_patches(imgs, 5, key=jax.random.key(2), n_patches=200_000)
    online = wh.adapt(W, more.astype(np.float32), lr=0.1, batch_size=200, lr_decay=0.01,
                      full=False)
    c = more.T @ more / len(more)
    assert wh.local_error(c, 5, 5, 2) == pytest.approx(before, abs=0.05)
    c_on = np.asarray(wh.output_covariance(W, online.gains.values, c))
    print("online local error", wh.local_error(c_on, 5, 5, 2))
    assert wh.local_error(c_on, 5, 5, 2) < 0.1


def test_many_circuits_in_one_vmapped_call(rng):
    """adapt_many == adapt per circuit (float32, the same updates: 1e-5 of gains ~1); a second
    call with other data and lr reuses the compiled program."""
    W = wh.random_frame(3, 6, key=jax.random.key(2))
    covs = np.stack([_rotated(rng, s) for s in ([0.5, 1, 2], [0.2, 1, 5], [1, 1, 3])])
    X = np.stack([_samples(rng, c, 2_000) for c in covs]).astype(np.float32)
    many = wh.adapt_many(W, X, lr=0.02, batch_size=4)
    assert many.gains.dims == ("circuit", "interneuron") and many.error.dims == ("circuit", "step")
    for i in range(3):
        one = wh.adapt(W, X[i], lr=0.02, batch_size=4)
        np.testing.assert_allclose(many.gains.values[i], one.gains.values, atol=1e-5)
    size = adapt_module._online_many._cache_size()
    wh.adapt_many(W, X[::-1] * 0.5, lr=0.03, batch_size=4)
    assert adapt_module._online_many._cache_size() == size
