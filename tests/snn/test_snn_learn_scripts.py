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
def test_snn_lnp_script_reports_every_method(tmp_path):
    script = _load("snn_lnp")
    assert script.main(["--out", str(tmp_path), "--hidden", "24", "--epochs", "1",
                        "--finetune-epochs", "1"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    methods = [r["method"] for r in report["rows"]]
    assert methods[0].startswith("LNP") and any("activity" in m for m in methods)
    # the controls trained from scratch or fine-tuned carry LNP's spectral radius
    assert sum("LNP's spectral radius" in m for m in methods) == 2
    assert report["lnp"]["neurons_after"] == 12
