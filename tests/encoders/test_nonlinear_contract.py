"""The nonlinear encoders' contract: scikit-learn parameters, determinism, one trace, resume
from a checkpoint to the same parameters, the progress bar, and clear errors on bad input."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import xarray as xr
from flax import nnx
from sklearn.base import clone

from brainmodels import training
from brainmodels.encoders import (
    AttentionRoutingEncoder,
    FactorizedReadout,
    InContextEncoder,
)

SMALL = {
    AttentionRoutingEncoder: dict(d_model=16, heads=2, max_steps=60, eval_every=20),
    FactorizedReadout: dict(max_steps=60, eval_every=20),
    InContextEncoder: dict(d_model=16, heads=2, layers=1, context_sizes=(8, 24), n_query=16,
                           max_steps=60, eval_every=20, batch_size=8),
}


def _maps(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4, 4, 3)).astype(np.float32)
    Y = np.stack([X[:, 1, 1, 0], X[:, 2, 3, 1] - X[:, 0, 0, 2], X[:, 3, 2, 2],
                  X[:, 1, 2, 0] + X[:, 1, 2, 1]], 1)
    Y = Y + 0.2 * rng.standard_normal(Y.shape)
    xa = xr.DataArray(X, dims=("stimulus", "y", "x", "channel"),
                      coords={"stimulus": np.arange(n), "x": [-3.0, -1.0, 1.0, 3.0],
                              "y": [3.0, 1.0, -1.0, -3.0]})
    ya = xr.DataArray(Y.astype(np.float32), dims=("stimulus", "voxel"),
                      coords={"stimulus": np.arange(n), "roi": ("voxel", ["V1", "V1", "V2",
                                                                         "V2"])})
    return xa, ya


def _inputs(cls, X, Y):
    if cls is InContextEncoder:
        return X.values.reshape(X.sizes["stimulus"], -1), Y.values
    return X, Y


def _params(enc):
    return jax.tree.leaves(nnx.state(enc.model_, nnx.Param))


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.__name__)
def test_same_seed_same_parameters_and_one_trace(cls):
    X, Y = _inputs(cls, *_maps())
    a = cls(**SMALL[cls], seed=3).fit(X, Y)
    b = clone(a).fit(X, Y)
    for pa, pb in zip(_params(a), _params(b), strict=True):
        np.testing.assert_array_equal(np.asarray(pa), np.asarray(pb))
    assert a.n_traces_ == 1  # the jitted step is traced once for the whole run
    assert a.history_.sizes["step"] >= 1 and "test_r" in a.history_
    c = cls(**SMALL[cls], seed=4).fit(X, Y)
    assert not np.array_equal(np.asarray(_params(a)[0]), np.asarray(_params(c)[0]))
    pred = a.predict(X)
    assert np.shape(pred) == Y.shape and np.isfinite(np.asarray(pred)).all()
    assert np.isfinite(a.score(X, Y))


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.__name__)
def test_interrupted_fit_resumes_to_the_same_parameters(cls, tmp_path, monkeypatch):
    X, Y = _inputs(cls, *_maps())
    kw = dict(SMALL[cls], patience=100)
    whole = cls(**kw).fit(X, Y)
    original = training._Loop.record
    calls = {"n": 0}

    def crash_at_second_evaluation(self, step, test):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, step, test)

    monkeypatch.setattr(training._Loop, "record", crash_at_second_evaluation)
    with pytest.raises(KeyboardInterrupt):
        cls(**kw, checkpoint_dir=tmp_path).fit(X, Y)
    monkeypatch.setattr(training._Loop, "record", original)
    resumed = cls(**kw, checkpoint_dir=tmp_path).fit(X, Y)
    assert resumed.history_.step.values[0] == 20  # the first evaluation came from the checkpoint
    for pa, pb in zip(_params(whole), _params(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(pa), np.asarray(pb))
    np.testing.assert_array_equal(np.asarray(whole.predict(X)), np.asarray(resumed.predict(X)))


def test_progress_bar_shows_the_validation_score(capsys):
    X, Y = _maps()
    FactorizedReadout(**SMALL[FactorizedReadout], progress=True).fit(X, Y)
    err = capsys.readouterr().err
    assert "FactorizedReadout" in err and "val_r=" in err


def test_labelled_outputs_keep_voxel_and_stimulus_coords():
    X, Y = _maps()
    enc = AttentionRoutingEncoder(**SMALL[AttentionRoutingEncoder]).fit(X, Y)
    pred = enc.predict(X.isel(stimulus=slice(0, 10)))
    assert pred.dims == ("stimulus", "voxel")
    np.testing.assert_array_equal(pred["roi"], Y["roi"])
    np.testing.assert_array_equal(pred["stimulus"], np.arange(10))
    maps = enc.attention_maps(X.isel(stimulus=slice(0, 5)))
    np.testing.assert_array_equal(maps["x"], X["x"])
    assert list(maps["roi"].values) == ["V1", "V2"]
    assert set(enc.to_dataset().data_vars) >= {"readout", "bias", "group"}
    import matplotlib

    matplotlib.use("Agg")
    from brainmodels.encoders import plot_attention

    fig = plot_attention(enc, X.isel(stimulus=slice(0, 3)), np.zeros((3, 16, 16)), stimulus=1)
    assert len(fig.axes) == 2


def test_factorized_masks_are_labelled_by_position():
    X, Y = _maps()
    enc = FactorizedReadout(**SMALL[FactorizedReadout]).fit(X, Y)
    assert enc.mask_.dims == ("voxel", "map_y", "map_x")
    np.testing.assert_array_equal(enc.mask_["map_x"], X["x"])
    np.testing.assert_array_equal(enc.mask_["map_y"], X["y"])
    assert (np.asarray(enc.mask_) >= 0).all()  # positive by default
    assert enc.receptive_fields_["rf_x"].attrs["units"] == "degrees"


def test_in_context_condition_writes_weights_in_input_units():
    """Context responses are normalised by their own mean and sd: an affine change of Y gives
    the same change of the predictions."""
    X, Y = _maps(200)
    Xf = X.values.reshape(200, -1)
    enc = InContextEncoder(**SMALL[InContextEncoder]).fit(Xf, Y.values)
    a = enc.condition(Xf[:24], Y.values[:24]).predict(Xf[100:])
    b = enc.condition(Xf[:24], 3.0 * Y.values[:24] + 7.0).predict(Xf[100:])
    np.testing.assert_allclose(b, 3.0 * a + 7.0, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="features"):
        enc.condition(Xf[:24, :5], Y.values[:24])


@pytest.mark.parametrize("cls", [AttentionRoutingEncoder, FactorizedReadout],
                         ids=lambda c: c.__name__)
def test_bad_feature_maps_are_refused(cls):
    X, Y = _maps()
    enc = cls(**SMALL[cls])
    with pytest.raises(ValueError, match=r"X must be a feature map .*got shape \(120, 48\)"):
        enc.fit(X.values.reshape(120, -1), Y)
    with pytest.raises(ValueError, match="same stimuli"):
        enc.fit(X, Y.isel(stimulus=slice(0, 100)))
    shuffled = Y.assign_coords(stimulus=np.roll(Y["stimulus"].values, 1))
    with pytest.raises(ValueError, match="different stimuli"):
        enc.fit(X, shuffled)
    bad = X.copy()
    bad[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN .* stimuli \[5\]"):
        enc.fit(bad, Y)
    with pytest.raises(ValueError, match="without token positions"):
        enc.fit(X.values.reshape(120, 16, 3), Y.values)
    const = Y.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"zero variance \(indices \[2\]\)"):
        enc.fit(X, const)
    fitted = cls(**SMALL[cls]).fit(X, Y)
    with pytest.raises(ValueError, match="tokens"):
        fitted.predict(X.isel(x=slice(0, 3)))


def test_attention_needs_rois():
    X, Y = _maps()
    with pytest.raises(ValueError, match="ROI of every voxel"):
        AttentionRoutingEncoder(**SMALL[AttentionRoutingEncoder]).fit(X, Y.values)
    with pytest.raises(ValueError, match=r"rois must have one label per voxel, shape \(4,\)"):
        AttentionRoutingEncoder(**SMALL[AttentionRoutingEncoder]).fit(X, Y, rois=["V1"])


def test_bad_training_settings_are_refused():
    X, Y = _maps()
    with pytest.raises(ValueError, match="max_steps must be a positive int"):
        FactorizedReadout(max_steps=0).fit(X, Y)
    with pytest.raises(ValueError, match="validation_fraction"):
        FactorizedReadout(validation_fraction=0.7).fit(X, Y)
    with pytest.raises(ValueError, match="l1_mask"):
        FactorizedReadout(l1_mask=-1.0).fit(X, Y)
    with pytest.raises(ValueError, match="context_sizes"):
        InContextEncoder(context_sizes=(30, 10)).fit(X.values.reshape(120, -1), Y.values)
    with pytest.raises(ValueError, match="distinct stimuli"):
        InContextEncoder(context_sizes=(10, 100), n_query=64).fit(X.values.reshape(120, -1),
                                                                 Y.values)
