"""Smoke tests of the learning scripts: one short epoch, files written, resume works."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_snn_digits_script_writes_checkpoints_and_resumes(tmp_path):
    script = _load("snn_digits")
    args = ["--out", str(tmp_path), "--epochs", "1", "--hidden", "16", "--batch-size", "128"]
    assert script.main(args) == 0
    assert (tmp_path / "checkpoints" / "last.msgpack").exists()
    assert (tmp_path / "training.png").stat().st_size > 0
    report = json.loads((tmp_path / "history.json").read_text())
    assert report["history"][0]["epoch"] == 1
    with pytest.raises(SystemExit, match="already holds a training run"):
        script.main(args)
    assert script.main([*args, "--resume"]) == 0


@pytest.mark.slow
def test_snn_lnp_script_runs_every_unit_resumes_and_summarises(tmp_path, capsys):
    script = _load("snn_lnp")
    args = ["--quick", "--state", str(tmp_path), "--tasks", "copy,lorenz"]
    assert script.main(args) == 0
    units = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(u["task"], u["regime"]) for u in units} == {
        ("copy", "readout"), ("copy", "full"), ("lorenz", "readout"), ("lorenz", "full")}
    for u in units:
        assert [r["method"] for r in u["rows"]] == ["LNP", "random", "activity", "dense"]
        lnp, rnd, act = u["rows"][:3]
        assert lnp["neurons"] == rnd["neurons"] == act["neurons"] == 20
        assert rnd["synapses"] == lnp["synapses"]
    capsys.readouterr()
    assert script.main(args) == 0  # every unit is done: nothing runs again
    out = capsys.readouterr().out
    assert "seed 0:" not in out and "| lorenz | full | LNP |" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {e["method"] for e in summary} == {"LNP", "random", "activity", "dense"}
