"""The command line: one entry point, --help for every subcommand, clean errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from brainmodels.cli import build_parser, main


def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return action.choices
    return {}


def _all_commands():
    out = []
    top = _subparsers(build_parser())
    for name, sub in top.items():
        out.append([name])
        for inner in _subparsers(sub):
            out.append([name, inner])
    return out


def test_demo_and_data_commands_exist():
    names = set(_subparsers(build_parser()))
    assert {"demo", "data"} <= names


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: brainmodels" in text and len(text) > 80


def test_python_dash_m_and_version():
    proc = subprocess.run(
        [sys.executable, "-m", "brainmodels", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("brainmodels ")


def test_help_does_not_import_jax():
    """Parsers are built without heavy imports, so `--help` is instant."""
    code = (
        "import sys; from brainmodels.cli import build_parser; build_parser(); "
        "print('jax' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_unknown_benchmark_is_a_clean_error(capsys):
    assert main(["bench", "no-such-benchmark"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
