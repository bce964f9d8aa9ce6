"""The CLI's progress bar off a terminal (a log file, a batch job): whole lines at an interval,
nothing for a short command."""

from __future__ import annotations

import io
import time

import brainmodels.cli._common as common


def test_off_a_terminal_a_long_run_logs_whole_lines_and_a_short_one_nothing(monkeypatch):
    log = io.StringIO()  # not a terminal
    monkeypatch.setattr(common.sys, "stderr", log)
    monkeypatch.setattr(common, "LOG_INTERVAL", 0.2)
    t0 = time.monotonic()
    for _ in common.progress(range(10), desc="train"):
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    lines = log.getvalue().splitlines(keepends=True)
    # one line per 0.2 s at most, the first after 0.2 s; the run lasts >= 0.5 s, so >= 1 line
    assert 1 <= len(lines) <= elapsed / 0.2, (lines, elapsed)
    assert all(line.startswith("train: ") and "/10 [" in line and line.endswith("]\n")
               for line in lines), lines
    assert "\r" not in log.getvalue()
    log.seek(0), log.truncate()
    bar = common.progress(total=3, desc="quick")
    for _ in range(3):
        bar.update()
    bar.close()
    assert log.getvalue() == ""  # shorter than the interval: silent
    assert common.progress(range(3), disable=True).disable
