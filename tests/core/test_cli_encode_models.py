"""`brainmodels encode --model ridge|attention|factorized|in-context`, run in-process."""

from __future__ import annotations

import numpy as np
import pytest

from brainmodels.cli import main
from brainmodels.data import load_netcdf

#: a small synthetic dataset (235 voxels); 250 stimuli leave the 200 training stimuli that the
#: in-context encoder's episodes need (contexts of up to 100 + 64 queries)
SMALL = ["--data", "synthetic", "--n-stimuli", "250", "--resolution", "20"]
SCORES = ("correlation", "r2", "noise_ceiling", "pvalue")  # normalized_score: NaN where the
# ceiling is below 0.1, as for ridge


def _rows(path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[:6] == ["roi", "voxels", "median_r", "above_chance",
                                       "median_ceiling", "median_r/ceiling"]
    return [line.split(",") for line in lines[1:]]


@pytest.mark.parametrize("model", ["attention", "factorized", "in-context"])
def test_each_model_writes_the_encode_outputs(model, tmp_path, capsys):
    out = tmp_path / "out"
    maps = [] if model == "attention" else ["--no-maps"]  # the maps once: no log10_alpha map
    assert main(["encode", "--model", model, "--max-steps", "30", *SMALL, *maps,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"held-out scores of {model}" in printed
    rows = _rows(out / "roi_table.csv")
    assert {r[0] for r in rows} >= {"V1", "V2", "V3", "V4", "none"}
    assert sum(int(r[1]) for r in rows) == 235
    model_ds = load_netcdf(out / "model.nc")
    assert model_ds.sizes["voxel"] == 235 and "roi" in model_ds.coords
    assert bool(model_ds["fitted"].all())
    assert model_ds.attrs["params"]["max_steps"] == 30
    history = load_netcdf(out / "history.nc")
    assert "test_r" in history and history.sizes["step"] >= 1
    scores = load_netcdf(out / "scores.nc")
    for name in SCORES:
        assert np.isfinite(scores[name].values).all(), name
    assert "alphas" not in scores
    files = {p.name for p in out.iterdir()}
    assert ("attention.nc" in files) == (model == "attention")
    if model == "attention":
        assert {"correlation.nii.gz", "correlation.png"} <= files
        assert "log10_alpha.nii.gz" not in files
        attention = load_netcdf(out / "attention.nc")
        assert attention.dims == ("stimulus", "query", "y", "x")
        assert attention.sizes["stimulus"] == 16
        np.testing.assert_allclose(attention.sum(("y", "x")).values, 1, atol=1e-4)
    if model == "factorized":
        assert {"rf_x", "rf_y", "rf_size"} <= set(scores) and scores["rf_x"].attrs["units"]
        assert model_ds["mask"].dims == ("voxel", "map_y", "map_x")
    if model == "in-context":
        assert model_ds["coef"].dims == ("feature", "voxel")


def test_a_feature_map_file_and_a_constant_voxel(tmp_path, capsys):
    """A 4-D .npy map (grid units); a voxel constant over the training stimuli is not fitted:
    it scores 0 and is marked in model.nc, the others are fitted as usual."""
    from brainmodels.cli._encode_fit import _split
    from brainmodels.data import save_netcdf
    from brainmodels.datasets import feature_map, make_synthetic_fmri

    ds = make_synthetic_fmri(80, 2, resolution_mm=20, seed=0)
    train, _ = _split(80, 0.2, seed=0)  # the command's split (--seed 0)
    ds["betas"][np.isin(ds["stimulus_id"].values, train), 3] = 1.5  # varies on held-out trials
    data = save_netcdf(ds, tmp_path / "data.nc")
    fmap = tmp_path / "map.npy"
    np.save(fmap, feature_map(ds).values)
    out = tmp_path / "out"
    assert main(["encode", "--model", "factorized", "--max-steps", "30", "--data", str(data),
                 "--features", str(fmap), "--no-maps", "--out", str(out)]) == 0
    assert "234 voxels (1 constant over them not fitted)" in capsys.readouterr().out
    model_ds = load_netcdf(out / "model.nc")
    assert model_ds.sizes["voxel"] == ds.sizes["voxel"]
    assert not model_ds["fitted"].values[3] and model_ds["fitted"].values.sum() == 234
    assert model_ds["map_x"].attrs["units"] == "grid"
    scores = load_netcdf(out / "scores.nc")
    for name in SCORES:
        assert np.isfinite(scores[name].values).all(), name
    assert scores["correlation"].values[3] == 0 and np.isnan(scores["rf_x"].values[3])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "attention", "--banded", "--cv", "5"],
         "--banded fits a banded ridge: it needs --model ridge"),
        (["--model", "attention", "--features", "retinotopic,category"],
         "use --features map"),
        (["--model", "factorized", "--features", "map,map"], "one spatial feature map"),
        (["--model", "factorized", "--cv", "5"], "--cv is a ridge option"),
        (["--model", "in-context", "--alphas=-1,2,3", "--voxel-batch", "8"],
         "--alphas, --voxel-batch are ridge options"),
        (["--max-steps", "10"], "ridge is fitted in closed form"),
    ],
)
def test_options_of_another_model_are_refused_before_any_work(argv, message, tmp_path, capsys,
                                                              monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("data work started before the options were checked")

    monkeypatch.setattr("brainmodels.datasets.make_synthetic_fmri", no_work)
    assert main(["encode", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "shape", "message"),
    [
        ("attention", (30, 12), "must be 4-D (stimulus, y, x, channel)"),
        ("ridge", (30, 4, 4, 2), "must be (stimulus, feature)"),
    ],
)
def test_a_feature_file_of_the_wrong_rank_is_refused(model, shape, message, tmp_path, capsys):
    path = tmp_path / "features.npy"
    np.save(path, np.zeros(shape, np.float32))
    code = main(["encode", "--model", model, "--data", "synthetic", "--n-stimuli", "30",
                 "--resolution", "20", "--features", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_in_context_needs_enough_training_stimuli(tmp_path, capsys):
    code = main(["encode", "--model", "in-context", "--data", "synthetic", "--n-stimuli", "60",
                 "--resolution", "20", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "the split leaves 48" in err, err


def test_help_documents_every_model(capsys):
    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    text = capsys.readouterr().out
    for model in ("ridge", "attention", "factorized", "in-context"):
        assert f"--model {model}" in text or model == "ridge"
        assert f"  {model} " in text
    assert "brainmodels encode --model attention" in text


def test_a_voxel_constant_in_every_trial_gets_ceiling_zero_not_an_error(tmp_path):
    """A voxel constant in every trial (a dead or masked-out voxel) has no measurable
    explainable variance: the command still runs, its ceiling is 0, its normalized score NaN
    (as for any ceiling below 0.1), and a warning names it; the other voxels' ceilings are
    those of explainable_variance on them alone."""
    from brainmodels.data import save_netcdf
    from brainmodels.datasets import make_synthetic_fmri
    from brainmodels.encoders import explainable_variance, noise_ceiling, repeats_from_trials

    ds = make_synthetic_fmri(60, 2, resolution_mm=20, seed=1)
    ds["betas"][:, 5] = 0.0
    data = save_netcdf(ds, tmp_path / "data.nc")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"explainable variance 0 for 1 voxel\(s\) constant "
                                         r"within a repeat: \[5\]"):
        assert main(["encode", "--data", str(data), "--no-maps", "--out", str(out)]) == 0
    scores = load_netcdf(out / "scores.nc")
    ceiling = scores["noise_ceiling"].values
    assert ceiling[5] == 0 and np.isnan(scores["normalized_score"].values[5])
    rest = np.delete(np.arange(ds.sizes["voxel"]), 5)
    reps, _ = repeats_from_trials(ds["betas"].values[:, rest], ds["stimulus_id"].values)
    np.testing.assert_allclose(ceiling[rest], noise_ceiling(explainable_variance(reps)),
                               rtol=1e-12)
