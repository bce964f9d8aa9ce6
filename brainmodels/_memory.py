"""Refuse a job that cannot fit in memory before allocating it, naming the knob that shrinks it.

A job that asks for more memory than the machine has is killed by the kernel minutes later
(or takes the machine with it). The big jobs (the synthetic dataset, ridge over voxel batches,
spiking-network recordings, Kuramoto phase recordings, RSA bootstraps) estimate their peak
memory from their sizes and call :func:`check_memory` first.

The limit is the memory the operating system reports as available now
(``MemAvailable`` on Linux), or ``BRAINMODELS_MEMORY_LIMIT`` (bytes, or a size such as
``8GB`` / ``512MiB``) where a scheduler allots less than the machine has.
"""

from __future__ import annotations

import os
import re

__all__ = ["InsufficientMemoryError", "available_bytes", "check_memory", "format_bytes"]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class InsufficientMemoryError(MemoryError, ValueError):
    """The job's estimated memory exceeds what is available (a ValueError too, so callers
    that report bad arguments report this one the same way)."""


def format_bytes(n: float) -> str:
    """``1.5e9`` -> ``'1.5 GB'``.

    Examples
    --------
    >>> format_bytes(1.5e9), format_bytes(2048)
    ('1.5 GB', '2.0 kB')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"BRAINMODELS_MEMORY_LIMIT must be a size such as 8GB or 512MiB, "
                         f"got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_bytes() -> int:
    """Memory available to a new allocation: ``BRAINMODELS_MEMORY_LIMIT`` if set, else the
    operating system's estimate (``MemAvailable``; physical pages where /proc is absent)."""
    limit = os.environ.get("BRAINMODELS_MEMORY_LIMIT")
    if limit:
        return _parse_size(limit)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 2**63 - 1


def check_memory(nbytes: float, *, what: str, knob: str) -> None:
    """Raise :class:`InsufficientMemoryError` if ``nbytes`` exceed :func:`available_bytes`.

    Parameters
    ----------
    nbytes : float
        The job's estimated peak memory.
    what : str
        The job and the sizes behind the estimate, for the message.
    knob : str
        What reduces the estimate (an argument and how to set it).

    Examples
    --------
    >>> check_memory(1e3, what="a tiny job", knob="nothing")
    >>> check_memory(1e30, what="10^30 bytes", knob="a smaller universe")
    Traceback (most recent call last):
    ...
    brainmodels._memory.InsufficientMemoryError: 10^30 bytes needs about 1000000000000000000.0 TB ...
    """
    have = available_bytes()
    if nbytes > have:
        raise InsufficientMemoryError(
            f"{what} needs about {format_bytes(nbytes)} of memory, but {format_bytes(have)} is "
            f"available; {knob} (refused before allocating; BRAINMODELS_MEMORY_LIMIT sets the "
            f"limit)")
