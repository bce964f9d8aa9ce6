"""Plots (figures with the right content, atomic files) and the ``brainmodels rsa`` command."""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainmodels.cli import main
from brainmodels.data import load_netcdf, save_netcdf
from brainmodels.rsa import bootstrap_compare, mds, plot_mds, plot_model_comparison, plot_rdm, rdm


@pytest.fixture(scope="module")
def patterns():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 30))
    return x, [f"s{i}" for i in range(10)]


def test_plot_rdm_labels_and_file(patterns, tmp_path):
    x, labels = patterns
    da = rdm(xr.DataArray(x, dims=("stimulus", "voxel"), coords={"stimulus": labels}),
             "correlation")
    fig = plot_rdm(da, title="test", output_file=tmp_path / "rdm.png", rank_transform=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert (tmp_path / "rdm.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind
    plt.close(fig)


def test_mds_recovers_euclidean_geometry(patterns):
    # classical MDS of squared euclidean distances reproduces the points up to rotation:
    # embedded pairwise squared distances equal the RDM (x P channels scaling) exactly
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((8, 2))
    d = rdm(pts, "euclidean")  # squared distance / 2 channels
    emb = mds(d, 2)
    d_emb = np.sum((emb[:, None] - emb[None]) ** 2, -1)
    np.testing.assert_allclose(d_emb, d, atol=1e-4)
    fig = plot_mds(d, groups=np.array(list("aabbccddee"[:8])))
    assert len(fig.axes[0].collections) == 4  # one scatter per group
    plt.close(fig)


def test_plot_model_comparison_has_bars_and_band():
    rng = np.random.default_rng(2)
    data = rng.random((4, 45))
    models = np.stack([data.mean(0) + 0.1 * rng.random(45), rng.random(45)])
    res = bootstrap_compare(models, data, "corr", key=jax.random.key(0), n_bootstrap=50)
    fig = plot_model_comparison(res)
    ax = fig.axes[0]
    assert len(ax.patches) >= 3  # 2 bars + the noise-ceiling band
    assert [t.get_text() for t in ax.get_xticklabels()] == ["model0", "model1"]
    plt.close(fig)
    # a fixed order (one order across ROI panels) overrides best-first
    fig = plot_model_comparison(res, order=["model1", "model0"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["model1", "model0"]
    heights = [p.get_height() for p in fig.axes[0].patches[:2]]
    np.testing.assert_allclose(heights, res["evaluation"].values[::-1])
    plt.close(fig)
    with pytest.raises(ValueError, match="once each"):
        plot_model_comparison(res, order=["model1"])


def test_plot_rdm_groups_sort_conditions_and_label_bands():
    """Conditions sorted by category, one tick per category at its band's centre."""
    x = np.random.default_rng(5).standard_normal((9, 20))
    groups = np.array(["b", "a", "c", "a", "b", "c", "a", "b", "c"])
    d = rdm(x, "euclidean")
    fig = plot_rdm(d, groups=groups)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    np.testing.assert_allclose(ax.get_xticks(), [1.0, 4.0, 7.0])
    order = np.argsort(groups, kind="stable")
    np.testing.assert_allclose(ax.images[0].get_array(), np.asarray(d)[np.ix_(order, order)])
    plt.close(fig)
    with pytest.raises(ValueError, match=r"one label per condition \(9,\)"):
        plot_rdm(d, groups=groups[:5])


def _tiny_dataset(rng):
    k, reps, vox = 16, 3, 40
    feat = rng.standard_normal((k, 5))
    w = rng.standard_normal((5, vox))
    stim = np.tile(np.arange(k), reps)
    betas = feat[stim] @ w + 0.5 * rng.standard_normal((k * reps, vox))
    betas[:, 20:] = rng.standard_normal((k * reps, 20))  # ROI "B" is noise
    return xr.Dataset(
        {"betas": (("trial", "voxel"), betas.astype(np.float32)),
         "features_true": (("stimulus", "feature_true"), feat)},
        coords={"stimulus_id": ("trial", stim), "repeat": ("trial", np.repeat(np.arange(reps), k)),
                "roi": ("voxel", np.array(["A"] * 20 + ["B"] * 20))},
    )


def test_cli_rsa_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(3)
    save_netcdf(_tiny_dataset(rng), tmp_path / "data.nc")
    np.save(tmp_path / "noise.npy", rng.standard_normal((16, 4)))
    out = tmp_path / "out"
    code = main(["rsa", "--data", str(tmp_path / "data.nc"), "--models",
                 f"true,{tmp_path / 'noise.npy'}", "--n-bootstrap", "100", "--out", str(out),
                 "--no-plots"])
    assert code == 0
    table = pd.read_csv(out / "table.csv")
    a = table[table.roi == "A"].set_index("model")
    assert a.loc["true", "evaluation"] > a.loc["noise", "evaluation"] + 0.2
    assert a.loc["true", "ci_low"] > 0
    res = load_netcdf(out / "results.nc")
    assert res["evaluation"].dims == ("roi", "model")
    header = capsys.readouterr().out
    assert "true" in header
    # the folds are repeats of one subject: held fixed by default, and said so
    assert "percentile interval over stimuli" in header and "held fixed" in header
    # the dual bootstrap on request: same evaluations, a wider t interval
    code = main(["rsa", "--data", str(tmp_path / "data.nc"), "--models",
                 f"true,{tmp_path / 'noise.npy'}", "--n-bootstrap", "100", "--out",
                 str(tmp_path / "both"), "--no-plots", "--over", "both"])
    assert code == 0
    assert "t interval" in capsys.readouterr().out
    both = pd.read_csv(tmp_path / "both" / "table.csv").set_index(["roi", "model"])
    stim = table.set_index(["roi", "model"])
    np.testing.assert_allclose(stim.evaluation, both.evaluation, atol=1e-6)
    assert np.all(stim.ci_high - stim.ci_low <= both.ci_high - both.ci_low + 1e-9)
    assert np.all(stim.ci_high - stim.ci_low < both.ci_high - both.ci_low)


def test_folds_are_resampled_by_default_only_when_they_are_subjects():
    """Repeats of one subject are held fixed (a percentile interval over stimuli); subjects
    are a sample of a population, so the default resamples them too (the dual bootstrap),
    exactly as ``over="both"`` does with the same key."""
    from brainmodels.rsa import compare_models_by_roi, default_over, model_rdms, roi_rdms

    ds = _tiny_dataset(np.random.default_rng(5))
    ds = ds.assign_coords(subject=("trial", ds["repeat"].values))
    models = model_rdms({"true": ds["features_true"].values,
                         "noise": np.random.default_rng(6).standard_normal((16, 4))})
    by_repeat, by_subject = roi_rdms(ds, folds="repeat"), roi_rdms(ds, folds="subject")
    np.testing.assert_array_equal(by_repeat.values, by_subject.values)  # same RDMs
    assert default_over(by_repeat) == "stimulus" and default_over(by_subject) == "both"
    assert default_over(roi_rdms(ds.assign_coords(subject=("trial", np.zeros(48, int))),
                                 folds="subject")) == "stimulus"  # one subject: nothing to draw
    key = jax.random.key(0)
    runs = {name: compare_models_by_roi(data, models, key=key, n_bootstrap=100, over=over)[0]
            for name, data, over in [("repeat", by_repeat, None), ("stimulus", by_repeat,
                                     "stimulus"), ("subject", by_subject, None),
                                     ("both", by_repeat, "both")]}
    for a, b in [("repeat", "stimulus"), ("subject", "both")]:
        for var in ("evaluation", "ci_low", "ci_high", "se"):
            np.testing.assert_array_equal(runs[a][var].values, runs[b][var].values)
    width = {k: (r["ci_high"] - r["ci_low"]).values for k, r in runs.items()}
    assert np.all(width["repeat"] < width["subject"])  # 2 degrees of freedom: a wide t interval
    assert np.all(width["repeat"] <= 2)


def test_cli_rsa_bad_model_is_a_clean_error(tmp_path, capsys):
    save_netcdf(_tiny_dataset(np.random.default_rng(4)), tmp_path / "data.nc")
    code = main(["rsa", "--data", str(tmp_path / "data.nc"), "--models", "nope",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # all or nothing: not even the folder


def test_cli_rsa_defaults_find_the_true_model_and_say_what_they_did(tmp_path, capsys):
    """With euclidean model RDMs the ground-truth retinotopic model scored 0.08 in V1 (noise
    ceiling 0.39-0.74); correlation distance, rsatoolbox users' default, gives ~0.28."""
    code = main(["rsa", "--data", "synthetic", "--rois", "V1,face-like", "--n-bootstrap",
                 "100", "--out", str(tmp_path / "o")])
    assert code == 0
    out = capsys.readouterr().out
    assert "retinotopic (correlation)" in out and "category (euclidean)" in out
    assert "percentile interval over stimuli (3 folds of 'repeat' held fixed" in out
    for png in ("rdms.png", "model_comparison.png"):  # an RDM for every ROI, not only the first
        assert (tmp_path / "o" / png).read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(tmp_path / "o" / "table.csv")
    v1 = table[table.roi == "V1"].set_index("model")
    assert v1.loc["retinotopic", "evaluation"] > 0.2
    assert v1.loc["retinotopic", "ci_low"] > max(v1.loc["pixels", "ci_high"],
                                                 v1.loc["category", "ci_high"])
