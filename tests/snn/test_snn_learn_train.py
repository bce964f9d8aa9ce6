"""BPTT training: sequential digits well above chance, one trace, atomic checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from brainmodels.datasets.tasks import sequential_digits
from brainmodels.snn._testing import TRACE_COUNTS
from brainmodels.snn.rsnn import RSNN
from brainmodels.snn.train import (
    TrainConfig,
    evaluate,
    load_checkpoint,
    save_checkpoint,
    train_classifier,
    train_step,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task = sequential_digits(order="row", repeat=2, seed=0)
    net = RSNN(task.n_inputs, 64, 10, tau_mem_ms=10.0, tau_out_ms=10.0,
               tau_distribution="gamma", tau_cv=0.5, in_scale=2.0, rngs=nnx.Rngs(0))
    before = evaluate(net, task.x_test, task.y_test)["accuracy"]
    traces = TRACE_COUNTS["train_step"]
    ckpt = tmp_path_factory.mktemp("ckpt")
    config = TrainConfig(epochs=3, batch_size=64, learning_rate=5e-3)
    result = train_classifier(net, task.x_train, task.y_train, config=config,
                              x_val=task.x_test, y_val=task.y_test, checkpoint_dir=ckpt)
    return {"task": task, "net": net, "before": before, "result": result, "ckpt": ckpt,
            "traces": TRACE_COUNTS["train_step"] - traces,
            "readout": np.asarray(net(task.x_test[:32]).readout),
            "tau": np.asarray(net.tau_mem_ms[...])}


def test_rsnn_learns_sequential_digits_well_above_chance(trained):
    # 3 epochs x 22 steps (~66 Adam steps) on 64 neurons: ~75% measured; chance is 10%
    hist = trained["result"].history
    assert trained["before"] < 0.3
    assert hist[-1]["val_accuracy"] >= 0.5
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_train_step_traced_once(trained):
    # ~66 steps with one batch shape: at most one trace of the loop's step (none if an
    # identical model was trained earlier in the session), and a further step adds none
    assert trained["result"].run.traces <= 1
    net, task = trained["net"], trained["task"]
    train_step(net, trained["result"].optimizer, task.x_train[:64], task.y_train[:64],
               np.ones((64, 16), bool), loss="sequence_ce", readout="mean", rate_reg=0.0,
               target_rate=0.05)
    opt = trained["result"].optimizer
    before = TRACE_COUNTS["train_step"]
    train_step(net, opt, task.x_train[:64], task.y_train[:64], np.ones((64, 16), bool),
               loss="sequence_ce", readout="mean", rate_reg=0.0, target_rate=0.05)
    assert TRACE_COUNTS["train_step"] == before


def test_checkpoints_round_trip_atomically(trained, tmp_path):
    net, task, ckpt = trained["net"], trained["task"], trained["ckpt"]
    # the exported model files, and the orbax checkpoints of the run (for resuming)
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.msgpack", "last.msgpack", "run"]
    fresh = RSNN(task.n_inputs, 64, 10, tau_mem_ms=10.0, tau_out_ms=10.0,
                 tau_distribution="gamma", tau_cv=0.5, rngs=nnx.Rngs(9))
    meta = load_checkpoint(fresh, ckpt / "last.msgpack")
    assert meta["epoch"] == 3 and meta["config"]["epochs"] == 3
    # bit-identical: the checkpoint stores float32 arrays losslessly
    np.testing.assert_array_equal(np.asarray(fresh(task.x_test[:32]).readout), trained["readout"])
    np.testing.assert_array_equal(np.asarray(fresh.tau_mem_ms[...]), trained["tau"])
    with pytest.raises(ValueError, match="does not match the model"):
        load_checkpoint(RSNN(8, 32, 10, rngs=nnx.Rngs(0)), ckpt / "last.msgpack")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(fresh, tmp_path / "missing.msgpack")
    save_checkpoint(net, tmp_path / "a.msgpack", metadata={"note": "x"})
    assert [p.name for p in tmp_path.iterdir()] == ["a.msgpack"]  # no temp files left


def test_bad_config():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="readout must be one of"):
        TrainConfig(readout="sum")
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="hinge")


def test_step_ce_and_final_mse_match_numpy(rng):
    # the per-step masked cross-entropy (copy task) and the final-step MSE (adding task),
    # recomputed with scipy's log-softmax on the same readout
    import scipy.special

    from brainmodels.datasets.tasks import adding_task, copy_task

    copy = copy_task(n_train=8, n_test=8, length=3, delay=2, n_symbols=4, seed=1)
    net = RSNN(copy.n_inputs, 12, copy.n_classes, rngs=nnx.Rngs(0))
    y_hat = np.asarray(net(copy.x_test).readout, np.float64)
    logp = scipy.special.log_softmax(y_hat, axis=-1)
    nll = -np.take_along_axis(logp, copy.y_test[..., None], -1)[..., 0]
    m = copy.mask_test
    expected = np.mean((nll * m).sum(1) / m.sum(1))
    acc = np.mean(((y_hat.argmax(-1) == copy.y_test) * m).sum(1) / m.sum(1))
    ev = evaluate(net, copy.x_test, copy.y_test, m, loss="step_ce", batch_size=5)
    assert ev["loss"] == pytest.approx(expected, rel=1e-5)  # float32 network vs float64 sums
    assert ev["accuracy"] == pytest.approx(acc)
    add = adding_task(n_train=8, n_test=8, length=10, seed=0)
    net = RSNN(2, 12, 1, rngs=nnx.Rngs(1))
    pred = np.asarray(net(add.x_test).readout)[:, -1, 0]
    ev = evaluate(net, add.x_test, add.y_test, loss="final_mse")
    assert ev["mse"] == pytest.approx(np.mean((pred - add.y_test) ** 2), rel=1e-5)
    assert ev["loss"] == pytest.approx(ev["mse"])


def test_foreign_corrupt_or_other_model_checkpoints_are_refused(trained, tmp_path):
    """msgpack only (no pickle: nothing in the file runs); a file that is not ours, of
    another format version or of another model class is a clear error, and the model is
    left as it was."""
    import pickle

    from flax import serialization

    task, ckpt = trained["task"], trained["ckpt"]
    fresh = RSNN(task.n_inputs, 64, 10, tau_mem_ms=10.0, tau_out_ms=10.0,
                 tau_distribution="gamma", tau_cv=0.5, rngs=nnx.Rngs(9))
    before = np.asarray(fresh.tau_mem_ms[...]).copy()
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.msgpack"
    evil.write_bytes(pickle.dumps(type("E", (), {"__reduce__": lambda self: (
        open, (str(marker), "w"))})()))
    garbage = tmp_path / "garbage.msgpack"
    garbage.write_bytes(b"\x00\xffnot a checkpoint" * 10)
    old = tmp_path / "old.msgpack"
    payload = serialization.msgpack_restore((ckpt / "last.msgpack").read_bytes())
    old.write_bytes(serialization.msgpack_serialize({**payload, "format": "brainmodels-checkpoint/0"}))
    other = tmp_path / "other.msgpack"
    other.write_bytes(serialization.msgpack_serialize({**payload, "model": "AKOrN"}))
    for path, message in [(evil, "not a"), (garbage, "not a"), (old, "format: brainmodels-checkpoint/0"),
                          (other, "holds a AKOrN, not a RSNN")]:
        with pytest.raises(ValueError, match=message):
            load_checkpoint(fresh, path)
    assert not marker.exists()
    np.testing.assert_array_equal(np.asarray(fresh.tau_mem_ms[...]), before)


def test_readout_only_regression_on_the_lorenz_task():
    """``step_mse`` with ``trainable="w_out|b_out"``: the recurrent network stays as drawn, the
    readout learns to predict x(t + 10 dt) far below its initial error."""
    from brainmodels.datasets.tasks import lorenz_task

    task = lorenz_task(n_train=128, n_test=64, length=60, seed=0)
    net = RSNN(1, 64, 1, tau_mem_ms=10.0, tau_out_ms=5.0, tau_distribution="gamma",
               tau_cv=0.5, in_scale=2.0, rngs=nnx.Rngs(0))
    w_rec, w_in = np.asarray(net.w_rec[...]).copy(), np.asarray(net.w_in[...]).copy()
    config = TrainConfig(epochs=15, batch_size=32, learning_rate=2e-2, loss="step_mse",
                         trainable="w_out|b_out")
    before = evaluate(net, task.x_test, task.y_test, task.mask_test, loss="step_mse")["mse"]
    res = train_classifier(net, task.x_train, task.y_train, config=config, x_val=task.x_test,
                           y_val=task.y_test, mask_train=task.mask_train,
                           mask_val=task.mask_test)
    np.testing.assert_array_equal(np.asarray(net.w_rec[...]), w_rec)
    np.testing.assert_array_equal(np.asarray(net.w_in[...]), w_in)
    after = res.final["val_mse"]
    assert after < 0.5 * before, (before, after)
