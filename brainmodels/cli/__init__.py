"""The ``brainmodels`` command line: one entry point, one module per subcommand.

Each subcommand lives in ``brainmodels/cli/<name>.py`` and defines ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit code). Parsers are built without importing JAX, so ``--help`` is instant; the
heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "data", "encode", "rsa", "simulate", "bench", "doctor")


def build_parser() -> argparse.ArgumentParser:
    from brainmodels import __version__

    parser = argparse.ArgumentParser(
        prog="brainmodels",
        description=(
            "JAX models for computational neuroscience: fit fMRI voxel encoders, simulate "
            "circuits (Kuramoto, AKOrN, spiking networks), compute representational similarity."
        ),
        epilog="Run `brainmodels COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"brainmodels {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"brainmodels.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"brainmodels.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from brainmodels._deps import MissingDependencyError

    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, MissingDependencyError) as err:
        print(f"brainmodels {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("interrupted; no partial outputs were written", file=sys.stderr)
        return 130
