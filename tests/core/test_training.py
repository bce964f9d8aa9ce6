"""The one training loop (brainmodels.training): convergence, the optax reference, one trace,
determinism, resume bit-identical after an interruption, early stopping, errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from brainmodels.testing import assert_close
from brainmodels.training import TrainConfig, fit, make_optimizer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 4)).astype(np.float32)
W_TRUE = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
Y = (X @ W_TRUE + 0.1 * RNG.normal(size=200)).astype(np.float32)


def mse(model, batch):
    x, y = batch
    err = model(x)[:, 0] - y
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}


class DropoutNet(nnx.Module):
    """A model with an RNG stream in its state (checkpoints must carry typed keys)."""

    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 16, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.out = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jax.nn.relu(self.hidden(x))))


def params(model):
    return [np.asarray(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_converges_to_least_squares_solution():
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    cfg = TrainConfig(steps=1500, batch_size=50, lr=0.02, schedule="cosine", eval_every=500)
    res = fit(model, mse, (X, Y), cfg, eval_data=(X, Y))
    coef, *_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)
    got = np.r_[np.asarray(model.kernel[...])[:, 0], np.asarray(model.bias[...])]
    # minibatch Adam with the step decayed to zero: within 1e-2 of the exact least-squares fit
    np.testing.assert_allclose(got, coef, atol=1e-2)
    h = res.history
    assert list(h.step.values) == [500, 1000, 1500]
    assert set(h.data_vars) == {"train_loss", "train_mae", "test_loss", "test_mae"}
    assert float(h.test_loss[-1]) < 0.0125  # the noise variance is 0.01
    assert h.attrs["model"] == "Linear" and h.attrs["seed"] == 0


def test_one_step_equals_optax_by_hand():
    """The loop's first update is optax's Adam on the gradient of the first batch."""
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(1))
    w0, b0 = np.asarray(model.kernel[...]), np.asarray(model.bias[...])
    cfg = TrainConfig(steps=1, batch_size=32, lr=0.1, clip_norm=0.5)
    fit(model, mse, (X, Y), cfg)
    idx = np.random.default_rng((0, 0)).permutation(len(X))[:32]

    def loss(p):
        return jnp.mean((X[idx] @ p["w"][:, 0] + p["b"][0] - Y[idx]) ** 2)

    p = {"w": jnp.asarray(w0), "b": jnp.asarray(b0)}
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.1))
    upd, _ = tx.update(jax.grad(loss)(p), tx.init(p), p)
    p = optax.apply_updates(p, upd)
    # an Adam step moves each parameter by ~lr = 0.1; the two computations round differently
    # in a handful of operations: 8 ulps of that step
    assert_close(model.kernel[...], p["w"], ulps=8, scale=0.1)
    assert_close(model.bias[...], p["b"], ulps=8, scale=0.1)


def test_step_traced_once_and_reused_by_a_second_fit():
    cfg = TrainConfig(steps=40, batch_size=20, eval_every=10)
    first = fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X, Y), cfg)
    second = fit(nnx.Linear(4, 1, rngs=nnx.Rngs(5)), mse, (X, Y), cfg)
    assert first.traces == 1
    assert second.traces == 0  # same model class, loss and optimizer settings: no new compile


def test_same_seed_same_result_other_seed_other_result():
    def run(seed):
        model = DropoutNet(nnx.Rngs(0))
        fit(model, mse, (X, Y), TrainConfig(steps=30, batch_size=16, seed=seed, eval_every=10))
        return params(model)

    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))


class Interrupt:
    """A progress callable that raises KeyboardInterrupt before step ``at`` (a real Ctrl-C)."""

    def __init__(self, at):
        self.at = at

    def __call__(self, steps):
        for s in steps:
            if s == self.at:
                raise KeyboardInterrupt
            yield s


@pytest.mark.parametrize("patience", [None, 50])
def test_resume_after_interrupt_is_bit_identical(tmp_path, patience):
    cfg = TrainConfig(steps=60, batch_size=16, lr=3e-3, optimizer="adamw", weight_decay=1e-2,
                      schedule="cosine", warmup_steps=5, clip_norm=1.0, eval_every=10,
                      patience=patience)
    ref_model = DropoutNet(nnx.Rngs(0))
    ref = fit(ref_model, mse, (X, Y), cfg, eval_data=(X, Y))

    model = DropoutNet(nnx.Rngs(0))
    with pytest.raises(KeyboardInterrupt):
        fit(model, mse, (X, Y), cfg, eval_data=(X, Y), checkpoint_dir=tmp_path / "ck",
            progress=Interrupt(at=37))
    again = DropoutNet(nnx.Rngs(0))
    res = fit(again, mse, (X, Y), cfg, eval_data=(X, Y), checkpoint_dir=tmp_path / "ck")
    assert res.resumed_from == 30
    assert all(np.array_equal(u, v) for u, v in zip(params(again), params(ref_model),
                                                    strict=True))
    np.testing.assert_array_equal(res.history.test_loss, ref.history.test_loss)
    np.testing.assert_array_equal(res.history.train_loss, ref.history.train_loss)
    assert res.best_step == ref.best_step
    # the RNG stream of the dropout layer continues where it was, too
    def rng_state(m):
        return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(
            nnx.state(m, nnx.RngState))]

    assert rng_state(again) and all(np.array_equal(u, v) for u, v in zip(
        rng_state(again), rng_state(ref_model), strict=True))


def test_ema_of_the_parameters(tmp_path):
    # SGD on a linear model: the moving average after every step, by hand, equals the loop's
    # ema_model (float32: a few ulps of the parameters); the trained model is untouched by it;
    # an interrupted run resumes to the same average, bit for bit
    cfg = TrainConfig(steps=25, batch_size=20, lr=0.05, optimizer="sgd", eval_every=5,
                      ema=0.9)
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(3))
    seen = [params(model)]
    res = fit(model, mse, (X, Y), dataclasses.replace(cfg, eval_every=1),
              callback=lambda row, m: seen.append(params(m)))
    avg = [p.astype(np.float64) for p in seen[0]]
    for step_params in seen[1:]:
        avg = [0.9 * a + 0.1 * p for a, p in zip(avg, step_params, strict=True)]
    for got, want, trained in zip(params(res.ema_model), avg, params(model), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, trained)  # the average lags the trained weights
    assert res.model is model and res.ema_model is not model
    # resume: the average is part of the checkpoint
    ref = fit(DropoutNet(nnx.Rngs(0)), mse, (X, Y), cfg)
    with pytest.raises(KeyboardInterrupt):
        fit(DropoutNet(nnx.Rngs(0)), mse, (X, Y), cfg, checkpoint_dir=tmp_path / "ck",
            progress=Interrupt(at=17))
    again = fit(DropoutNet(nnx.Rngs(0)), mse, (X, Y), cfg, checkpoint_dir=tmp_path / "ck")
    assert again.resumed_from == 15
    assert all(np.array_equal(u, v) for u, v in zip(params(again.ema_model),
                                                    params(ref.ema_model), strict=True))
    assert fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X, Y),
               TrainConfig(steps=2, batch_size=20)).ema_model is None


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    cfg = TrainConfig(steps=20, batch_size=16, eval_every=10)
    fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X, Y), cfg, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"another configuration \(lr: 0.001 -> 0.01\)"):
        fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X, Y),
            TrainConfig(steps=20, batch_size=16, eval_every=10, lr=0.01), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="does not match this model"):
        fit(nnx.Linear(4, 2, rngs=nnx.Rngs(0)), lambda m, b: jnp.mean(m(b[0]) ** 2), (X, Y),
            cfg, checkpoint_dir=tmp_path)
    # a longer run with a constant schedule may continue an earlier one
    res = fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X, Y),
              TrainConfig(steps=30, batch_size=16, eval_every=10), checkpoint_dir=tmp_path)
    assert res.resumed_from == 20 and list(res.history.step.values) == [10, 20, 30]


def test_early_stopping_restores_the_best_state():
    """Evaluated against targets of the opposite sign, the test loss only rises: the best
    evaluation is the first, and the model is put back to that state."""
    cfg = TrainConfig(steps=200, batch_size=20, lr=0.05, eval_every=10, patience=3)
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    res = fit(model, mse, (X, Y), cfg, eval_data=(X, -Y))
    assert res.stopped_early and res.best_step == 10
    assert list(res.history.step.values) == [10, 20, 30, 40]
    ref = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    fit(ref, mse, (X, Y), TrainConfig(steps=10, batch_size=20, lr=0.05, eval_every=10))
    assert all(np.array_equal(u, v) for u, v in zip(params(model), params(ref), strict=True))


def test_generator_data_and_custom_eval():
    w = jnp.asarray(W_TRUE)

    def task(key, step):
        x = jax.random.normal(key, (32, 4))
        return x, x @ w

    def accuracy(model, data):
        x, y = data
        return {"sign_accuracy": jnp.mean(jnp.sign(model(x)[:, 0]) == jnp.sign(y))}

    cfg = TrainConfig(steps=300, batch_size=32, lr=0.05, eval_every=100,
                      monitor="test_sign_accuracy", monitor_mode="max")
    runs = []
    for _ in range(2):
        model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
        runs.append(fit(model, mse, task, cfg, eval_data=(X, X @ W_TRUE), eval_fn=accuracy))
    assert float(runs[0].history.test_sign_accuracy[-1]) > 0.97
    np.testing.assert_array_equal(runs[0].history.train_loss, runs[1].history.train_loss)
    assert runs[0].best_step is not None


def test_divergence_is_reported_with_its_step():
    cfg = TrainConfig(steps=50, batch_size=20, lr=1e4, optimizer="sgd", eval_every=25)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step \d+"):
        fit(nnx.Linear(4, 1, rngs=nnx.Rngs(0)), mse, (X * 1e3, Y), cfg)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer"),
    ({"lr": -1.0}, "lr must be a positive finite number"),
    ({"lr": float("nan")}, "lr must be a positive finite number"),
    ({"optimizer": "adamax"}, r"optimizer must be one of \['adam', 'adamw', 'sgd'\]"),
    ({"schedule": "step"}, "schedule must be one of"),
    ({"clip_norm": 0.0}, "clip_norm must be > 0"),
    ({"patience": 0}, "patience must be an integer >= 1"),
    ({"monitor_mode": "lowest"}, "monitor_mode must be 'min' or 'max'"),
    ({"eval_every": 10, "checkpoint_every": 15}, "must be a multiple of eval_every"),
    ({"ema": 1.0}, r"ema must be a decay in \[0, 1\)"),
])
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_inputs_are_refused(tmp_path):
    model = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
    cfg = TrainConfig(steps=2, batch_size=16)
    with pytest.raises(ValueError, match="share the leading sample axis"):
        fit(model, mse, (X, Y[:10]), cfg)
    with pytest.raises(ValueError, match=r"batch_size \(16\) exceeds the 10 samples"):
        fit(model, mse, (X[:10], Y[:10]), cfg)
    with pytest.raises(ValueError, match="scalar loss"):
        fit(model, lambda m, b: (m(b[0])[:, 0] - b[1]) ** 2, (X, Y), cfg)
    with pytest.raises(ValueError, match="monitor 'test_loss' is not recorded"):
        fit(model, mse, (X, Y), TrainConfig(steps=2, batch_size=16, eval_every=1, patience=2))
    with pytest.raises(TypeError, match="model"):
        fit(lambda x: x, mse, (X, Y), cfg)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="checkpoint_dir"):
        fit(model, mse, (X, Y), cfg, checkpoint_dir=tmp_path / "file")


def test_make_optimizer_updates_params_only():
    model = DropoutNet(nnx.Rngs(0))
    opt = make_optimizer(model, TrainConfig())
    shapes = jax.tree.map(np.shape, jax.tree.leaves(opt.opt_state[0].mu))
    assert shapes == jax.tree.map(np.shape, jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_trainable_updates_only_the_matching_parameters():
    """A readout-only regime: parameters outside ``trainable`` keep their initial values
    exactly (zero updates, weight decay included), the matching ones learn."""
    import re

    class Net(nnx.Module):
        def __init__(self):
            self.hidden = nnx.Linear(3, 8, rngs=nnx.Rngs(0))
            self.out = nnx.Linear(8, 1, rngs=nnx.Rngs(1))

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))

    x = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
    y = np.sin(x).sum(1, keepdims=True)
    model = Net()
    before = {k: np.asarray(v).copy() for k, v in
              zip(("hk", "ok"), (model.hidden.kernel[...], model.out.kernel[...]), strict=True)}
    loss = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)  # noqa: E731
    config = TrainConfig(steps=100, batch_size=32, lr=0.05, optimizer="adamw",
                         weight_decay=0.1, trainable="^out/", eval_every=50)
    res = fit(model, loss, (x, y), config, eval_data=(x, y))
    np.testing.assert_array_equal(np.asarray(model.hidden.kernel[...]), before["hk"])
    assert not np.array_equal(np.asarray(model.out.kernel[...]), before["ok"])
    assert res.history.test_loss[-1] < res.history.test_loss[0]
    with pytest.raises(ValueError, match=re.escape("matches no parameter of Net; its "
                                                   "parameters are ['hidden/bias'")):
        fit(Net(), loss, (x, y), TrainConfig(steps=2, batch_size=32, trainable="w_out"))
    with pytest.raises(ValueError, match="trainable must be a regular expression"):
        TrainConfig(trainable="(")


def test_training_a_clone_leaves_the_original_usable():
    """fit donates its step's buffers; a model sharing arrays with the trained one (nnx.clone
    shares them) must keep working."""
    original = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    copy = nnx.clone(original)
    x = np.ones((64, 3), np.float32)
    loss = lambda m, b: jnp.mean(m(b) ** 2)  # noqa: E731
    fit(copy, loss, x, TrainConfig(steps=5, batch_size=32))
    np.testing.assert_array_equal(np.asarray(original(x[:1])),
                                  np.asarray(nnx.Linear(3, 2, rngs=nnx.Rngs(0))(x[:1])))
