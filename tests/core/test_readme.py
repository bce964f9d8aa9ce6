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
