"""Optional and run-time dependencies: a missing package names itself and its install command.

Every package the library imports at module level is declared in ``pyproject.toml``; this module
serves the ones that are imported late (the netCDF backend, the peers of the benchmarks), so
that a broken or partial environment fails with the package and the command that installs it
instead of a traceback from deep inside another library.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["MissingDependencyError", "require", "install_hint"]

#: import name -> (distribution on PyPI, extra of brainmodels that installs it, if any)
_KNOWN: dict[str, tuple[str, str | None]] = {
    "h5py": ("h5py", None),
    "h5netcdf": ("h5netcdf", None),
    "rsatoolbox": ("rsatoolbox", "bench"),
    "himalaya": ("himalaya", "bench"),
    "brainpy": ("brainpy", "bench"),
    "sklearn": ("scikit-learn", None),
    "pytest": ("pytest", "test"),
    "dask": ("dask[distributed]", "distributed"),
    "distributed": ("dask[distributed]", "distributed"),
}


class MissingDependencyError(ImportError):
    """A package brainmodels needs here is not installed (the message says how to install it)."""


def install_hint(module: str) -> str:
    """The command that installs the package providing ``module``.

    Examples
    --------
    >>> install_hint("rsatoolbox")
    "pip install 'brainmodels[bench]' (or: pip install rsatoolbox)"
    >>> install_hint("h5py")
    'pip install h5py'
    """
    top = module.split(".")[0]
    dist, extra = _KNOWN.get(top, (top, None))
    if extra is None:
        return f"pip install {dist}"
    return f"pip install 'brainmodels[{extra}]' (or: pip install {dist})"


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming it and how to install it.

    Parameters
    ----------
    module : str
        Import name, e.g. ``"h5py"``.
    purpose : str
        What needs it, for the message (``"writing netCDF files"``).

    Raises
    ------
    MissingDependencyError
        If the module cannot be found.

    Examples
    --------
    >>> require("json", purpose="an example").__name__
    'json'
    >>> require("surely_not_installed_pkg", purpose="an example")
    Traceback (most recent call last):
    ...
    brainmodels._deps.MissingDependencyError: an example needs the package 'surely_not_installed_pkg', which is not installed; install it with: pip install surely_not_installed_pkg
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        missing = (err.name or module).split(".")[0]  # may be a dependency of ``module``
        raise MissingDependencyError(
            f"{purpose} needs the package {missing!r}, which is not installed; "
            f"install it with: {install_hint(missing)}"
        ) from err
