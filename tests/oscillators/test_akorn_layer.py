"""AKOrN Kuramoto layer: Lyapunov energy, sphere constraint, gradients, analytic limits.

References: Miyato et al. (2025), eqs. 2-4; the classic Kuramoto model (brainmodels.kuramoto).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from brainmodels import akorn
from brainmodels.akorn import (
    ConvCoupling,
    DenseCoupling,
    KuramotoLayer,
    normalize_oscillators,
)
from brainmodels.testing import assert_close, compilations


def _unit(rng, shape, n):
    return np.asarray(normalize_oscillators(jnp.asarray(rng.standard_normal(shape)), n))


def _to64(module, *filters):
    graphdef, *states = nnx.split(module, *filters)
    return graphdef, *(jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), s) for s in states)


# ----------------------------------------------------------------------------- energy


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_energy_never_increases_for_symmetric_J(kind, rng, x64):
    n, shape = 4, (2, 5, 5, 8)
    units = int(np.prod(shape[1:]))
    if kind == "dense":
        w = rng.standard_normal((units, units))
        J = DenseCoupling.from_matrix(w, symmetric=True)
        norm_j = np.linalg.norm(0.5 * (w + w.T), 2)
    else:
        J = ConvCoupling(8, 3, symmetric=True, rngs=nnx.Rngs(1))
        J.kernel.set_value(jnp.asarray(rng.standard_normal((3, 3, 8, 8))))
        norm_j = 9 * 8 * np.abs(np.asarray(J.weights())).max()  # crude bound on ||J||_2
    c = jnp.asarray(rng.standard_normal(shape))
    gamma = 0.2 / (norm_j + np.abs(c).max())  # small step: << 1 / Lipschitz const of grad E
    layer = KuramotoLayer(8, n=n, coupling=J, T=150, gamma=gamma, omega=None,
                          learn_omega=False, c_norm=False, rngs=nnx.Rngs(0))
    graphdef, state = _to64(layer)
    traj = nnx.merge(graphdef, state)(jnp.asarray(rng.standard_normal(shape)), c)
    e = np.asarray(traj.energy)
    assert e.dtype == np.float64 and e.shape == (151, 2)
    # non-increasing up to float64 round-off of a sum of ~10^3 terms of size ~|E|
    assert np.all(np.diff(e, axis=0) <= 1e-12 * np.abs(e).max())
    assert np.all(e[-1] < e[0] - 1.0)  # and it actually descends (not a frozen state)


def test_symmetric_conv_is_self_adjoint(rng, x64):
    J = ConvCoupling(6, 5, symmetric=True, rngs=nnx.Rngs(0))
    J.kernel.set_value(jnp.asarray(rng.standard_normal((5, 5, 6, 6))))
    x, y = (jnp.asarray(rng.standard_normal((1, 7, 7, 6))) for _ in range(2))
    # <y, J x> = <J y, x> exactly (zero padding included); float64 round-off tolerance
    np.testing.assert_allclose(jnp.sum(y * J(x)), jnp.sum(J(y) * x), rtol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        ConvCoupling(6, 4, symmetric=True, rngs=nnx.Rngs(0))


# ----------------------------------------------------------------------------- sphere


@pytest.mark.parametrize("coupling", ["conv", "attn"])
def test_states_stay_on_the_sphere(coupling, rng):
    layer = KuramotoLayer(16, n=4, coupling=coupling, T=8, gamma=1.0, omega=0.7,
                          rngs=nnx.Rngs(0))
    x = jnp.asarray(3.0 * rng.standard_normal((2, 6, 6, 16)), jnp.float32)
    c = jnp.asarray(rng.standard_normal((2, 6, 6, 16)), jnp.float32)
    traj = layer(x, c, return_states=True)
    norms = np.linalg.norm(np.asarray(traj.states).reshape(9, 2, 6, 6, 4, 4), axis=-1)
    # float32: a normalisation is exact to a few ulp (eps = 1.2e-7)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    np.testing.assert_array_equal(traj.states[-1], traj.final)
    assert np.isfinite(np.asarray(traj.energy)).all()
    ds = traj.to_xarray(4)
    assert ds["state"].dims == ("step", "stimulus", "height", "width", "oscillator", "component")
    np.testing.assert_array_equal(ds["state"].values.reshape(traj.states.shape), traj.states)
    np.testing.assert_array_equal(ds["energy"].values, traj.energy)


# ----------------------------------------------------------------------------- gradients


def test_gradients_match_finite_differences(rng, x64):
    ch, T = 8, 6
    layer = KuramotoLayer(ch, n=4, coupling=ConvCoupling(ch, 3, rngs=nnx.Rngs(2)), T=T,
                          gamma=0.5, omega=0.3, rngs=nnx.Rngs(0))
    graphdef, params, rest = _to64(layer, nnx.Param, ...)
    x0 = jnp.asarray(rng.standard_normal((1, 4, 4, ch)))
    c = jnp.asarray(rng.standard_normal((1, 4, 4, ch)))
    w = jnp.asarray(rng.standard_normal((1, 4, 4, ch)))

    @jax.jit
    def loss(p, c):
        return jnp.sum(w * nnx.merge(graphdef, p, rest)(x0, c).final)

    g_p, g_c = jax.grad(loss, argnums=(0, 1))(params, c)
    assert float(jnp.abs(g_p["omega"][...])) > 0  # the frequency receives a gradient
    d_p = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), params)
    d_c = jnp.asarray(rng.standard_normal(c.shape))
    h = 1e-6

    def shifted(s):
        return loss(jax.tree.map(lambda a, d: a + s * d, params, d_p), c + s * d_c)

    fd = (shifted(h) - shifted(-h)) / (2 * h)
    ad = sum(jnp.sum(a * d) for a, d in zip(jax.tree.leaves(g_p), jax.tree.leaves(d_p),
                                             strict=True)) + jnp.sum(g_c * d_c)
    # central differences in float64: truncation O(h^2) ~ 1e-12, round-off ~ 1e-16 / h ~ 1e-10
    np.testing.assert_allclose(fd, ad, rtol=1e-6)


# ----------------------------------------------------------------------------- analytic limits


def test_no_coupling_aligns_with_stimulus(rng, x64):
    n, shape = 4, (3, 10, 8)
    c = jnp.asarray(rng.standard_normal(shape))
    x = jnp.asarray(_unit(rng, shape, n))
    zero = DenseCoupling.from_matrix(np.zeros((80, 80)))
    layer = KuramotoLayer(8, n=n, coupling=zero, T=1, gamma=0.3, omega=None,
                          learn_omega=False, c_norm=False, rngs=nnx.Rngs(0))
    graphdef, state = _to64(layer)
    layer = nnx.merge(graphdef, state)
    # one step, exactly: the angle phi to c obeys tan phi' = sin phi (1 - g|c| cos phi)
    # / (cos phi + g|c| sin^2 phi) (x + g Proj_x c, written in the plane of x and c)
    gx, gc = x.reshape(3, 10, 2, 4), c.reshape(3, 10, 2, 4)
    cn = np.linalg.norm(gc, axis=-1)
    phi = np.arccos(np.clip(np.sum(gx * gc, -1) / cn, -1, 1))
    g = 0.3 * cn
    expected = np.arctan2(np.sin(phi) * (1 - g * np.cos(phi)), np.cos(phi) + g * np.sin(phi) ** 2)
    x1 = layer(x, c).final.reshape(3, 10, 2, 4)
    got = np.arccos(np.clip(np.sum(x1 * gc, -1) / cn, -1, 1))
    np.testing.assert_allclose(got, expected, atol=1e-7)  # arccos near 0 loses ~sqrt(eps)
    # many steps: every oscillator ends at c_i / |c_i|
    final = layer(x, c, T=200).final.reshape(3, 10, 2, 4)
    np.testing.assert_allclose(final, gc / cn[..., None], atol=1e-8)


def _akorn_phases(theta0, K, gamma, steps, omega):
    m = theta0.shape[0]
    block = np.kron(np.ones((m, m)), np.eye(2)) * K / m  # J_ij = (K/M) I_2 for every pair
    layer = KuramotoLayer(2 * m, n=2, coupling=DenseCoupling.from_matrix(block), T=steps,
                          gamma=gamma, omega=omega, learn_omega=False, c_norm=False,
                          rngs=nnx.Rngs(0))
    graphdef, state = _to64(layer)
    x0 = np.stack([np.cos(theta0), np.sin(theta0)], -1).reshape(1, 2 * m)
    xs = nnx.merge(graphdef, state)(jnp.asarray(x0), jnp.zeros((1, 2 * m)), return_states=True)
    xs = np.asarray(xs.states).reshape(steps + 1, m, 2)
    return np.arctan2(xs[..., 1], xs[..., 0])


def _classic_phases(theta0, K, dt, steps, omega):
    from brainmodels import kuramoto

    params = kuramoto.KuramotoParams(coupling=K, omega=np.full(theta0.shape, omega))
    ds = kuramoto.simulate(params, theta0, dt=dt, steps=steps, method="euler", record_every=1)
    return ds["phase"].values


@pytest.mark.parametrize("omega", [0.0, 0.4])
def test_reduces_to_classic_kuramoto(omega, rng, x64):
    theta0 = rng.uniform(-np.pi, np.pi, 6)
    K, t_end = 1.5, 2.0
    errs = []
    for gamma in (2e-2, 1e-2):
        steps = int(round(t_end / gamma))
        a = _akorn_phases(theta0, K, gamma, steps, omega)
        b = _classic_phases(theta0, K, gamma, steps, omega)
        errs.append(np.abs(np.angle(np.exp(1j * (a - b)))).max())
    # per step the layer advances the angle by atan(gamma v) instead of gamma v (Euler):
    # local error O(gamma^3), global O(gamma^2); so < 1e-3 here and halving gamma quarters it
    assert errs[0] < 1e-3
    assert 3.0 < errs[0] / errs[1] < 5.0


# ----------------------------------------------------------------------------- errors


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n must be an even"):
        KuramotoLayer(12, n=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="multiple of n"):
        KuramotoLayer(10, n=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="coupling must be one of"):
        KuramotoLayer(8, n=4, coupling="ring", rngs=nnx.Rngs(0))
    layer = KuramotoLayer(8, n=4, T=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="same shape"):
        layer(jnp.ones((1, 4, 4, 8)), jnp.ones((1, 4, 5, 8)))


# ----------------------------------------------------------------------------- training smoke


def test_contrastive_training_step_runs_and_traces_once(rng):
    model = akorn.AKOrN(image_size=16, patch=4, channels=16, n=4, T=2, coupling="attn",
                        heads=2, out_features=8, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    step = akorn.make_contrastive_step()
    images = jnp.asarray(rng.uniform(size=(8, 16, 16, 3)), jnp.float32)
    before = jax.tree.map(np.array, nnx.state(model, nnx.Param))
    loss = step(model, opt, images, jax.random.key(0))
    # NT-Xent over 2B = 16 views: 0 < loss, and near log(2B - 1) = 2.7 for an untrained net
    assert 0.0 < float(loss) < 2 * np.log(15)
    after = nnx.state(model, nnx.Param)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before, after)
    assert all(jax.tree.leaves(changed))  # every parameter received an update
    with compilations() as compiled:
        step(model, opt, images, jax.random.key(1))
    assert compiled.count == 0, compiled.names


def test_crop_recipe_views():
    # the authors' recipe: views stay in [0, 1]; a hue rotation keeps luma and chroma length
    # (it is a rotation of the YIQ chroma plane), grayscale views have equal channels, no view
    # is upside down (a picture with a bright top row keeps it bright), same key same views
    from brainmodels.akorn import contrastive

    img = np.zeros((64, 16, 16, 3), np.float32)
    img[:, :4] = [0.9, 0.2, 0.1]  # a red band at the top
    img[:, 4:] = [0.1, 0.3, 0.6]
    v = np.asarray(akorn.augment(img, key=jax.random.key(0), recipe="crops"))
    assert v.shape == img.shape and v.min() >= 0 and v.max() <= 1
    np.testing.assert_array_equal(v, np.asarray(akorn.augment(img, key=jax.random.key(0),
                                                              recipe="crops")))
    luma = v @ contrastive._YIQ[0]
    top, bottom = luma[:, :2].mean((1, 2)), luma[:, -2:].mean((1, 2))
    # never upside down (a crop below the band has equal rows; most crops keep the band)
    assert (top >= bottom - 1e-6).all() and (top > bottom + 0.05).mean() > 0.5
    gray = np.all(np.abs(v - v[..., :1]) < 1e-6, axis=(1, 2, 3))
    assert 3 <= gray.sum() <= 25  # grayscale with p = 0.2 of 64 views (binomial: ~5-22)
    # hue rotation alone (no crop, no gray): a YIQ rotation by theta, luma kept
    theta = 0.3
    rot = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)],
                    [0, np.sin(theta), np.cos(theta)]], np.float32)
    m = contrastive._YIQ_INV @ rot @ contrastive._YIQ
    px = np.array([0.4, 0.5, 0.45], np.float32)
    np.testing.assert_allclose(contrastive._YIQ @ (m @ px) @ [1, 0, 0],
                               contrastive._YIQ[0] @ px, atol=1e-6)
    with pytest.raises(ValueError, match="recipe must be one of"):
        akorn.augment(img, key=jax.random.key(0), recipe="mixup")


def test_iterative_layer_rejects_misspelt_arguments():
    """The baseline layer ignores only KuramotoLayer's oscillator arguments; a typo is loud."""
    akorn.IterativeLayer(8, n=4, omega=0.1, coupling="conv", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['kernel_sise'\]"):
        akorn.IterativeLayer(8, kernel_sise=5, coupling="conv", rngs=nnx.Rngs(0))


def test_train_contrastive_is_the_step_on_the_package_loop(rng):
    """train_contrastive's first step equals make_contrastive_step on the same batch and key
    (the batch and augmentation key drawn from fold_in(key(seed), step)), to float32
    rounding; the loop traces its step once."""
    from brainmodels.training import TrainConfig

    def model():  # small: the test is about the loop, not the network
        return akorn.AKOrN(image_size=8, patch=4, channels=8, n=4, T=1, coupling="conv",
                           out_features=4, rngs=nnx.Rngs(0))

    images = rng.uniform(size=(12, 8, 8, 3)).astype(np.float32)
    cfg = TrainConfig(steps=1, batch_size=8, lr=1e-3, optimizer="adamw", weight_decay=1e-4,
                      eval_every=1, seed=3)
    a = model()
    res = akorn.train_contrastive(a, images, cfg)
    pick, aug = jax.random.split(jax.random.fold_in(jax.random.key(3), 0))
    idx = np.asarray(jax.random.choice(pick, 12, (8,), replace=False))
    b = model()
    opt = nnx.Optimizer(b, optax.adamw(1e-3, weight_decay=1e-4), wrt=nnx.Param)
    loss = akorn.make_contrastive_step()(b, opt, images[idx], aug)
    assert float(res.history.train_loss[0]) == pytest.approx(float(loss), rel=1e-6)
    for u, v in zip(jax.tree.leaves(nnx.state(a, nnx.Param)),
                    jax.tree.leaves(nnx.state(b, nnx.Param)), strict=True):
        # one AdamW step (size ~lr = 1e-3) on parameters of O(1): a few ulps of O(1) values
        assert_close(u, v, ulps=16, scale=1.0)
    assert res.traces <= 1
    with pytest.raises(ValueError, match=r"batch_size \(8\) exceeds the 4 images"):
        akorn.train_contrastive(model(), images[:4], cfg)


def test_akorn_architecture_is_one_config_object():
    """AKOrN(config, rngs=, **overrides): keywords override the config's fields, a misspelt
    one is refused, and the same config builds the same network."""
    cfg = akorn.AKOrNConfig(image_size=16, patch=4, channels=16, T=2, coupling="conv",
                            out_features=8)
    a = akorn.AKOrN(cfg, rngs=nnx.Rngs(0))
    b = akorn.AKOrN(image_size=16, patch=4, channels=16, T=2, coupling="conv", out_features=8,
                    rngs=nnx.Rngs(0))
    assert a.config == b.config == cfg
    assert akorn.count_params(a) == akorn.count_params(b)
    assert akorn.AKOrN(cfg, oscillatory=False, rngs=nnx.Rngs(0)).config.oscillatory is False
    with pytest.raises(TypeError, match="unknown argument"):
        akorn.AKOrN(cfg, chanels=8, rngs=nnx.Rngs(0))


def test_gta_rotations_are_orthogonal_and_attention_sees_relative_positions():
    """GTA (Miyato et al. 2024): rho(g) is a rotation, and the logits (rho(g_i)^T q) .
    (rho(g_j)^T k) depend on g_i - g_j only: shifting every position leaves them unchanged
    (to float32 rounding of the angles, ~1e-5)."""
    from brainmodels.akorn.layer import gta_angles, gta_rotate

    rng = np.random.default_rng(0)
    q = jnp.asarray(rng.standard_normal((1, 12, 2, 8)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((1, 12, 2, 8)), jnp.float32)
    angles = gta_angles(3, 4, 8)
    back = gta_rotate(gta_rotate(q, angles, inverse=True), angles)
    np.testing.assert_allclose(back, q, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(gta_rotate(q, angles), axis=-1),
                               jnp.linalg.norm(q, axis=-1), rtol=1e-5)
    # positions shifted by (2 columns, 5 rows): the per-axis angles grow by a constant
    k4 = 8 // 4
    freqs = np.pi / 2.0 ** np.arange(k4)
    shifted = angles + jnp.asarray(np.r_[2 * freqs, 5 * freqs], jnp.float32)[None]

    def logits(a):
        return jnp.einsum("blhd,bmhd->bhlm", gta_rotate(q, a, inverse=True),
                          gta_rotate(k, a, inverse=True))

    np.testing.assert_allclose(logits(shifted), logits(angles), atol=1e-4)
    assert not np.allclose(logits(angles), jnp.einsum("blhd,bmhd->bhlm", q, k), atol=1e-2)


def test_gta_attention_coupling_in_akorn():
    from brainmodels.akorn import AKOrN
    from brainmodels.akorn.layer import AttentionCoupling

    model = AKOrN(image_size=16, patch=4, channels=16, heads=2, T=2, coupling="attn_gta",
                  rngs=nnx.Rngs(0))
    out = model(jnp.zeros((2, 16, 16, 3)), key=jax.random.key(0))
    assert np.isfinite(np.asarray(out.out)).all()
    with pytest.raises(ValueError, match="divisible by 4"):
        AttentionCoupling(16, heads=8, gta=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="height, width"):
        AttentionCoupling(16, heads=2, gta=True, rngs=nnx.Rngs(0))(jnp.zeros((2, 5, 16)))
