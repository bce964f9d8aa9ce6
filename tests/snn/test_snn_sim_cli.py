"""``brainmodels simulate cuba|coba|brunel``: files written, readable, consistent; bad input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from brainmodels.cli import main
from brainmodels.cli.simulate_snn import parse_duration_ms, rate_axis_limit
from brainmodels.data import load_netcdf


@pytest.mark.parametrize("model", ["cuba", "coba", "brunel"])
def test_simulate_writes_spikes_and_plot(tmp_path, capsys, model):
    code = main(["simulate", model, "--duration", "100ms", "--n", "500", "--seed", "3",
                 "--out", str(tmp_path)])
    assert code == 0
    res = load_netcdf(tmp_path / f"{model}_spikes.nc")
    assert res.attrs["seed"] == 3 and res.attrs["duration_ms"] == 100.0
    assert res.attrs["units"]["time"] == "ms"
    t, i = res.spike_time.values, res.spike_neuron.values
    assert t.size > 0 and t.min() >= 0 and t.max() < 100.0 and i.max() < 500
    # rate trace and events agree: sum(rate * n * bin) = number of events
    assert res["rate_P"].values.sum() * 500 * 1e-3 == pytest.approx(t.size)
    png = (tmp_path / f"{model}_raster.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rate_hz" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_brunel_options_and_bad_size(tmp_path, capsys):
    # --g and --eta reach the network: a quieter regime (more inhibition, less drive) fires less
    rates = []
    for g, eta in ((4.0, 2.0), (6.0, 1.0)):
        out = tmp_path / f"g{g}"
        assert main(["simulate", "brunel", "--duration", "200ms", "--n", "500", "--g", str(g),
                     "--eta", str(eta), "--out", str(out)]) == 0
        rates.append(load_netcdf(out / "brunel_spikes.nc").spike_time.size)
    assert rates[0] > rates[1] > 0
    with pytest.raises(SystemExit, match="multiple of 5"):
        main(["simulate", "brunel", "--n", "503", "--out", str(tmp_path / "x")])


def test_duration_parser():
    assert parse_duration_ms("1s") == 1000.0
    assert parse_duration_ms("250ms") == 250.0
    assert parse_duration_ms("0.1ms") == pytest.approx(0.1)
    for bad in ("-1s", "1h", "fast", "0ms", "1 sec"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration_ms(bad)


def test_bare_duration_is_refused_with_both_spellings(tmp_path, capsys):
    """`--duration 1` used to mean 1 ms (and printed "cv nan"): ambiguous, so refused."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"write 40s \(seconds\) or 40ms"):
        parse_duration_ms("40")
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "cuba", "--duration", "1", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "1s (seconds) or 1ms" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_short_run_prints_no_nan(tmp_path, capsys):
    assert main(["simulate", "cuba", "--duration", "2ms", "--n", "100",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    out = out.replace(str(tmp_path), "")  # the folder is named for this test
    assert "nan" not in out and "n/a" in out


def test_rate_axis_skips_the_start_up_volley():
    time = np.arange(0.0, 600.0, 1.0)
    rate = np.full(time.size, 20.0)
    rate[:5] = 350.0  # the COBA start-up volley
    top, note = rate_axis_limit(time, {"P": rate})
    assert top == pytest.approx(24.0) and "peak 350 Hz in the first 50 ms" in note
    assert rate_axis_limit(time, {"P": np.full(time.size, 20.0)}) == (None, "")


def test_bad_dt_is_a_clean_error(tmp_path, capsys):
    code = main(["simulate", "cuba", "--duration", "10ms", "--dt", "8ms", "--n", "100",
                 "--out", str(tmp_path)])
    assert code == 2
    assert "dt_ms" in capsys.readouterr().err
    assert not np.any([p.suffix == ".nc" for p in tmp_path.iterdir()])
