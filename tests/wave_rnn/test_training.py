"""Training the wave-RNN: one trace of the jitted step, learning the copy task, the CLI."""

import numpy as np
import xarray as xr

from brainmodels.cli import main
from brainmodels.datasets import copy_memory_task, memoryless_loss
from brainmodels.training import TrainConfig
from brainmodels.wave_rnn import build_model, train


def _data(t, split):
    return {"x": getattr(t, f"x_{split}"), "y": getattr(t, f"y_{split}"),
            "mask": getattr(t, f"mask_{split}")}


def test_short_copy_run_beats_memoryless_baseline_and_traces_once():
    t = copy_memory_task(delay=10, n_train=1024, n_test=256, seed=0)
    base = memoryless_loss(t)  # 10 log 8 / 30 = 0.693
    model = build_model("wave-rnn", 10, 10, n_neurons=100, n_channels=6, seed=0)
    cfg = TrainConfig(steps=60, batch_size=64, lr=1e-3, clip_norm=1.0, eval_every=30)
    res = train(model, "sequence", _data(t, "train"), _data(t, "test"), cfg)
    assert res.traces == 1  # one batch shape: the jitted step is traced once
    final = float(res.history.test_loss[-1])
    # the shift kernel carries the symbols round the ring (0.44 measured at 50 steps)
    assert final < 0.8 * base, (final, base)


def test_cli_train_writes_history_curves_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "irnn", "--task", "copy", "--delay", "5", "--steps", "4",
                 "--eval-every", "2", "--batch", "8", "--neurons", "8", "--out", str(out)])
    assert code == 0
    h = xr.open_dataset(out / "history.nc", engine="h5netcdf")
    assert list(h.step.values) == [2, 4]
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(h.data_vars)
    assert np.isfinite(h.test_loss).all() and h.attrs["params"] > 0
    assert (out / "curves.png").stat().st_size > 0 and (out / "checkpoints").is_dir()


def test_cli_rejects_unknown_model(capsys):
    try:
        main(["train", "transformer", "--task", "copy", "--out", "x"])
    except SystemExit as e:
        assert e.code == 2
    assert "invalid choice" in capsys.readouterr().err
