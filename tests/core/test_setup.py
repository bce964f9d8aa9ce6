"""A fresh machine gets what the code needs: declared dependencies, a lock that covers them,
and a missing package that names itself with the command that installs it."""

from __future__ import annotations

import ast
import json
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from brainmodels._deps import MissingDependencyError
from brainmodels.cli import main
from brainmodels.data import save_netcdf

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("brainmodels", "encoders", "snn", "datasets")


def _requirements(*, extras: bool) -> dict[str, Requirement]:
    out = {}
    for text in requires("brainmodels") or []:
        req = Requirement(text)
        is_extra = req.marker is not None and "extra" in str(req.marker)
        if is_extra and not extras:
            continue
        if req.marker is not None and not is_extra and not req.marker.evaluate():
            continue  # another Python's pin
        out[canonicalize_name(req.name)] = req
    return out


def _imported_top_level_modules() -> set[str]:
    names = set()
    for folder in LIBRARY:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"brainmodels", "__future__"}


def test_every_imported_package_is_declared():
    """The import scan of the issue: each third-party module the library imports anywhere
    (top level or inside functions) comes from a distribution in [project.dependencies]."""
    declared = set(_requirements(extras=False))
    providers = packages_distributions()
    undeclared = {}
    for module in sorted(_imported_top_level_modules()):
        dists = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_netcdf_backend_is_declared():
    """h5netcdf >= 1.8 no longer installs h5py: the fresh-clone failure this guards."""
    assert {"h5netcdf", "h5py"} <= set(_requirements(extras=False))


def test_the_lock_pins_every_requirement_within_its_range():
    """A dependency added to pyproject.toml without `make lock` fails here, not on a user's
    machine; so does a lock whose pin falls outside the declared range."""
    version = "{}.{}".format(*sys.version_info[:2])
    lock = ROOT / "requirements" / f"constraints-py{version}.txt"
    supported = ("3.11", "3.12", "3.13")  # README: Python 3.11-3.13, one lock each
    assert lock.exists() or version not in supported, f"{lock.name} is missing: run `make lock`"
    if not lock.exists():  # a newer Python than the project supports: nothing to check
        pytest.skip(f"Python {version} is outside the supported {supported}; no lock to check")
    pins = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = pinned.strip()
    for name, req in _requirements(extras=True).items():
        assert name in pins, f"{name} is required but not pinned in {lock.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]}, outside the declared range {req.specifier}")


def test_missing_netcdf_backend_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now fails as if not installed
    da = xr.DataArray(np.zeros(3, np.float32), dims="voxel")
    with pytest.raises(MissingDependencyError, match=r"'h5py'.*pip install h5py"):
        save_netcdf(da, tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())  # and nothing was written


def test_missing_benchmark_peer_is_one_line_with_the_install_command(tmp_path, monkeypatch,
                                                                     capsys):
    (tmp_path / "peerless.py").write_text("import rsatoolbox_not_installed_here\n")
    monkeypatch.setattr("brainmodels.cli.bench._bench_dir", lambda: tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # bench rewrites argv for the script
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["bench", "peerless"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'rsatoolbox_not_installed_here'" in err and "pip install" in err


def test_doctor_reports_every_dependency(capsys):
    assert main(["doctor", "--json", "--no-compile-check"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {canonicalize_name(r["package"]): r for r in report["dependencies"]}
    assert set(_requirements(extras=False)) <= set(rows)
    assert all(rows[name]["ok"] for name in _requirements(extras=False))
    assert report["jax"]["backend"] == "cpu" and report["jax"]["devices"]
    assert report["python"]["version"].startswith("{}.{}".format(*sys.version_info[:2]))


def test_every_package_folder_is_in_the_wheel():
    """Each folder with an ``__init__.py`` under the four code folders is listed in
    ``[tool.setuptools] packages``; a missing one installs editable but not from the wheel
    (``brainmodels.representations`` was missing once)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            if "__pycache__" not in rel:
                found.add(".".join([package, *rel]))
    assert found <= listed, sorted(found - listed)
