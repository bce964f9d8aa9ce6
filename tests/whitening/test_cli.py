"""`brainmodels simulate whitening`: writes a loadable result and three plots; clean errors."""

from __future__ import annotations

import numpy as np

from brainmodels.cli import main
from brainmodels.data import load_netcdf


def test_simulate_whitening_writes_results(tmp_path, capsys):
    out = tmp_path / "w"
    code = main(["simulate", "whitening", "--n", "3", "--contexts", "2", "--samples", "40000",
                 "--seeds", "2", "--condition", "4", "--out", str(out)])
    assert code == 0
    ds = load_netcdf(out / "whitening.nc")
    assert ds.error.dims == ("seed", "step") and ds.samples_to_threshold.dims == ("context", "seed")
    assert ds.W.shape == (3, 12)
    # defaults (lr 0.05 decaying, batches of 50): every context and seed reaches the threshold
    # 0.1; the end value fluctuates around it at 4e4 samples (0.03-0.11 seen; accuracy is
    # tested in test_adapt.py with 1e5 samples)
    assert float(ds.error.isel(step=-1).max()) < 0.2
    assert np.all(ds.samples_to_threshold.values <= 20_000)
    for name in ("whitening_error.png", "gains.png", "spectrum.png"):
        assert (out / name).stat().st_size > 10_000
    assert "samples to < threshold" in capsys.readouterr().out


def test_simulate_whitening_bad_arguments(tmp_path, capsys):
    code = main(["simulate", "whitening", "--lr", "-1", "--out", str(tmp_path / "x")])
    assert code == 2 and "--lr must be a positive" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    code = main(["simulate", "whitening", "--n", "3", "--k", "4", "--out", str(tmp_path / "y")])
    assert code == 2 and "needs K >= N(N+1)/2 = 6" in capsys.readouterr().err
