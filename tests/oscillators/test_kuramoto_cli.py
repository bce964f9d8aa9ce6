"""`brainmodels simulate kuramoto`: writes a loadable sweep and two plots; clean errors."""

from __future__ import annotations

import numpy as np
import pytest

from brainmodels.cli import main
from brainmodels.cli.simulate_kuramoto import parse_couplings
from brainmodels.data import load_netcdf


def test_parse_couplings():
    assert parse_couplings("0:4:5") == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert parse_couplings("1.5,2") == [1.5, 2.0]


def test_simulate_kuramoto_writes_results(tmp_path, capsys):
    out = tmp_path / "k"
    code = main(["simulate", "kuramoto", "--n", "2000", "--coupling", "1:3:3", "--seeds", "2",
                 "--dt", "0.1", "--steps", "300", "--batch", "2", "--out", str(out)])
    assert code == 0
    ds = load_netcdf(out / "kuramoto_sweep.nc")
    assert ds.order_parameter.dims == ("coupling", "seed", "time")
    np.testing.assert_allclose(ds.coupling.values, [1.0, 2.0, 3.0])  # padding dropped
    # Lorentzian width 1 (K_c = 2): K = 3 gives sqrt(1/3) = 0.577; N = 2000, T = 30, r0 = 0.1:
    # finite-N fluctuations ~0.02 and the tail of the transient; 0.05 is comfortable
    r = ds.order_parameter_stationary.sel(coupling=3.0).mean("seed")
    assert float(r) == pytest.approx(np.sqrt(1 / 3), abs=0.05)
    assert float(ds.order_parameter_stationary.sel(coupling=1.0).mean()) < 0.1
    for name in ("order_parameter_time.png", "order_parameter_vs_coupling.png"):
        assert (out / name).stat().st_size > 10_000
    assert "K_c (N -> inf) = 2.0000" in capsys.readouterr().out


def test_simulate_kuramoto_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "kuramoto", "--coupling", "a:b", "--out", str(tmp_path)])
    assert "--coupling must be START:STOP:NUM" in capsys.readouterr().err
    code = main(["simulate", "kuramoto", "--n", "10", "--coupling", "1", "--dt", "-1",
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "dt must be a positive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # all or nothing: not even the folder


def test_default_batches_show_progress_and_change_nothing(tmp_path, monkeypatch):
    """Without --batch the sweep runs in ~10 batches (one compiled program), so the progress
    bar moves; the results equal the all-at-once run's up to float32 rounding (the vectorised
    width changes XLA's summation order: 1 ulp of r <= 1 seen, 4 eps allowed)."""
    calls = []
    import brainmodels.cli.simulate_kuramoto as cli

    def counting(iterable, **kwargs):
        calls.append(kwargs.get("total"))
        return iterable

    monkeypatch.setattr(cli, "progress", counting)
    args = ["simulate", "kuramoto", "--n", "300", "--coupling", "0:3:20", "--steps", "100"]
    assert main([*args, "--out", str(tmp_path / "auto")]) == 0
    assert main([*args, "--batch", "0", "--out", str(tmp_path / "all")]) == 0
    assert calls == [10, 1]
    auto, whole = (load_netcdf(tmp_path / d / "kuramoto_sweep.nc") for d in ("auto", "all"))
    np.testing.assert_allclose(auto.order_parameter.values, whole.order_parameter.values,
                               rtol=0, atol=4 * np.finfo(np.float32).eps)
