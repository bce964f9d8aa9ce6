"""Timing shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
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


def machine(**extra: str) -> dict:
    """What a record says about where it was measured (JAX's device, cores, versions)."""
    import jax

    return dict(device=jax.devices()[0].device_kind, cpus=os.cpu_count(),
                platform=platform.platform(), jax=jax.__version__, **extra)


def append_records(path: Path, records: list[dict], where: dict) -> None:
    """Append ``records`` (one JSON object per line) with the machine and a time stamp."""
    path.parent.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps({**r, "machine": where, "when": stamp}) + "\n")
    print(f"appended {len(records)} records to {path}")
