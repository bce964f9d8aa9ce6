"""The README's tour runs as written (docs that cannot rot)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    head = "\n".join(lines[:8])
    assert "make demo" in head and "make test" in head


def test_readme_tour_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python tour"
    tour = blocks[0]
    assert len(tour.strip().splitlines()) <= 12
    proc = subprocess.run(
        [sys.executable, "-c", tour], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "compare_rdms" in proc.stdout  # the RSA result prints as a labelled DataArray


def test_readme_make_commands_are_makefile_targets():
    """Every ``make X`` the README names is a target of the Makefile."""
    readme = (ROOT / "README.md").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = set(re.findall(r"`make ([\w-]+)", readme)) | set(re.findall(r"^make ([\w-]+)", readme,
                                                                         flags=re.M))
    assert named and named <= targets, sorted(named - targets)


def test_readme_models_meet_the_brain_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "compare_to_brain" in b)
    code = "import matplotlib\nmatplotlib.use('Agg')\n" + block + "\nprint(result.best_layer_encoding.sel(roi='V1').item())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("gabor/energy")


def test_readme_banded_ridge_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "BandedRidgeEncoder" in b)
    code = block + "\nshare = split.groupby(Y.roi_kind).mean()\n" \
        "print(float(share.sel(feature_space='retinotopic', roi_kind='retinotopic')) > " \
        "float(share.sel(feature_space='category', roi_kind='retinotopic')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("True")


def test_readme_nonlinear_encoders_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if "AttentionRoutingEncoder" in b)
    proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "('stimulus', 'query', 'y', 'x')" in proc.stdout and "rf_x" in proc.stdout


def test_readme_fidelity_table_is_generated_from_the_results():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "fidelity.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_fidelity_verdicts():
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("_fidelity", ROOT / "scripts" / "fidelity.py")
    fidelity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fidelity)
    assert fidelity.verdict(np.array([]))[0] == "not run yet"
    assert fidelity.verdict(np.array([0.1, 0.2]))[0].startswith("inconclusive (2 seeds")
    assert fidelity.verdict(np.array([0.10, 0.12, 0.11, 0.09]))[0] == "reproduced"
    assert fidelity.verdict(np.array([0.10, 0.12, 0.11]), direction=-1)[0] == \
        "not reproduced (reversed)"
    assert fidelity.verdict(np.array([0.1, -0.1, 0.05, -0.02]))[0].startswith("inconclusive")
    # 3 seeds: the threshold is t(2) = 4.30 SE, not 2 SE; mean 1, SE 1/3 -> 3 SE: inconclusive
    diffs = np.array([1.0, 1.0 - 1 / np.sqrt(3), 1.0 + 1 / np.sqrt(3)])
    assert np.isclose(diffs.std(ddof=1) / np.sqrt(3), 1 / 3)
    assert fidelity.verdict(diffs)[0] == "inconclusive (the 95 % interval, +-4.30 SE, contains zero)"
    assert fidelity.verdict(diffs / 2 + 1)[0] == "reproduced"  # mean 1.5, SE 1/6: 9 SE


def test_readme_benchmark_tables_are_generated_from_the_records():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "_records.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
