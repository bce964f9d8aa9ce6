"""Timing shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple


class Timing(NamedTuple):
    median: float  # wall seconds, median over the runs
    times: list[float]  # wall seconds per run
    cpu: list[float]  # process CPU seconds per run (all threads)
    out: Any  # the last run's result


def median_time(fn, repeats: int) -> Timing:
    """Call ``fn`` ``repeats`` times; each run waits for JAX results (``block_until_ready``)
    so that asynchronous dispatch is timed in full."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        for leaf in out if isinstance(out, tuple | list) else (out,):
            if hasattr(leaf, "block_until_ready"):
                leaf.block_until_ready()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return Timing(statistics.median(times), times, cpu, out)
