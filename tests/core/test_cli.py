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


@pytest.fixture
def broken_files(tmp_path):
    """A truncated netCDF file, an HDF5 signature followed by junk, an empty file, a bad .npy."""
    import numpy as np
    import xarray as xr

    from brainmodels.data import save_netcdf

    full = save_netcdf(xr.Dataset({"betas": (("trial", "voxel"), np.zeros((4, 3)))}),
                       tmp_path / "full.nc").read_bytes()
    files = {"truncated": full[: len(full) // 2], "junk": b"\x89HDF\r\n\x1a\n" + b"\0" * 64,
             "empty": b""}
    for name, data in files.items():
        (tmp_path / f"{name}.nc").write_bytes(data)
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    return tmp_path


@pytest.mark.parametrize("name", ["truncated", "junk", "empty"])
@pytest.mark.parametrize("command", [["encode", "--data"], ["rsa", "--data"], ["data", "info"]])
def test_a_broken_file_is_one_line_naming_it(broken_files, command, name, capsys):
    path = broken_files / f"{name}.nc"
    out = broken_files / "out"
    extra = [] if command[0] == "data" else ["--out", str(out)]
    code = main([*command, str(path), *extra])
    err = capsys.readouterr().err
    if command[0] == "data" and name == "empty":  # no netCDF signature: not a dataset at all
        assert code == 2 and f"{path} is not a supported dataset" in err
        return
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{path} is not a readable netCDF" in err
    assert not out.exists()


def test_a_broken_npy_is_one_line_naming_it(broken_files, capsys):
    import numpy as np

    from brainmodels.data import save_netcdf
    from brainmodels.datasets import make_synthetic_fmri

    path = save_netcdf(make_synthetic_fmri(8, 2, resolution_mm=20, image_size=8, seed=0),
                       broken_files / "data.nc")
    bad = broken_files / "bad.npy"
    pickled = broken_files / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for npy in (bad, pickled):
        code = main(["encode", "--data", str(path), "--features", str(npy), "--out",
                     str(broken_files / "out")])
        err = capsys.readouterr().err
        assert code == 2 and f"feature file {npy} is not a readable .npy array" in err, err
        assert err.count("\n") == 1
