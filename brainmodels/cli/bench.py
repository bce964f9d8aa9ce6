"""``brainmodels bench NAME``: run a side-by-side benchmark script from ``benchmarks/``.

Benchmarks run the peer library (himalaya, scikit-learn, rsatoolbox, brian2, numpy/scipy) in the same
process on the same data and print times and ratios. They live in the source tree, not in the
installed package, so this command works from a checkout (``pip install -e .``).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def _bench_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def register(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="run a benchmark against the peer library (ridge, rsa, snn, kuramoto, akorn)",
        description="Run benchmarks/NAME.py (from a source checkout); extra arguments pass through, "
        "e.g. `brainmodels bench ridge --quick`.",
    )
    parser.add_argument("name", nargs="?", help="benchmark name; omit to list them")
    parser.add_argument("rest", nargs="...", help="arguments for the benchmark script")
    parser.set_defaults(func=run)


def run(args) -> int:
    folder = _bench_dir()
    available = (sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
                 if folder.is_dir() else [])
    if not args.name:
        print("benchmarks:", ", ".join(available) or f"(none found in {folder})")
        return 0
    if args.name not in available:
        raise ValueError(f"unknown benchmark {args.name!r}; available: {available}")
    sys.argv = [str(folder / f"{args.name}.py"), *args.rest]
    sys.path.insert(0, str(folder))  # as `python benchmarks/<name>.py` would: shared helpers
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except ModuleNotFoundError as err:  # a peer library of the benchmark is not installed
        from brainmodels._deps import MissingDependencyError, install_hint

        missing = (err.name or "").split(".")[0]
        raise MissingDependencyError(
            f"benchmark {args.name!r} runs the peer package {missing!r}, which is not "
            f"installed; install the benchmark peers with `make bench` in a checkout, or "
            f"{install_hint(missing)}") from err
    return 0
