"""Read a pickled ``{label: name}`` dict from a .npy file without running code from the file.

``np.load(path, allow_pickle=True)`` unpickles whatever the file says, and a pickle can call
any importable function (``os.system``, ``builtins.exec``): a crafted .npy runs arbitrary code.
Here the .npy header is parsed with :mod:`numpy.lib.format` and the payload is unpickled by a
:class:`pickle.Unpickler` whose ``find_class`` admits only what ``np.save`` writes for a dict of
int/str keys and str values with numpy scalars: ``numpy.ndarray``, ``numpy.dtype`` and the
two numpy functions that rebuild arrays and scalars (``_reconstruct``, ``scalar``). Anything
else is refused before it is imported.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

__all__ = ["load_label_mapping"]

# the rebuild functions, found through numpy's own pickling (numpy 1 names them
# numpy.core.multiarray.*, numpy 2 numpy._core.multiarray.*; files of both exist)
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_SCALAR = np.int64(0).__reduce__()[0]
_ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_module, "scalar")] = _SCALAR


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it asks for {module}.{name}, which a pickled dict of labels never needs; "
                "refusing to run code from a data file") from None


def load_label_mapping(path: str | os.PathLike, what: str = "label mapping") -> dict[int, str]:
    """The ``{int label: str name}`` dict pickled in the .npy file ``path``, read safely.

    Parameters
    ----------
    path : path-like
        A .npy file written by ``np.save(path, {1: "V1v", 2: "V1d"})``.
    what : str
        What the file is, for error messages.

    Returns
    -------
    dict of int to str

    Raises
    ------
    ValueError
        If the file is not a .npy file holding a pickled dict of integer labels to names, or
        its pickle refers to anything else (naming the file); nothing from it is executed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mapping_prf-visualrois.npy"
    >>> np.save(path, {0: "Unknown", 1: "V1v"})
    >>> load_label_mapping(path)
    {0: 'Unknown', 1: 'V1v'}
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            if dtype != np.dtype(object) or shape != ():
                raise ValueError(f"it holds a {dtype} array of shape {shape}, not a pickled dict")
            array = _RestrictedUnpickler(fh).load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (ValueError, OSError, EOFError, pickle.UnpicklingError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, RecursionError) as err:
        raise ValueError(f"{what} {path} is not a readable pickled dict: {err}") from err
    return _as_mapping(array, path, what)


def _as_mapping(array, path: Path, what: str) -> dict[int, str]:
    item = array.item() if isinstance(array, np.ndarray) and array.shape == () else array
    if not isinstance(item, dict):
        raise ValueError(f"{what} {path} holds a {type(item).__name__}, expected a dict "
                         "{label: name}")
    out = {}
    for key, value in item.items():
        integer = (isinstance(key, int | np.integer) and not isinstance(key, bool)) or (
            isinstance(key, str) and key.strip().lstrip("-").isdigit())
        if not integer or not isinstance(value, str):
            raise ValueError(f"{what} {path} maps {key!r} to {value!r}; expected integer labels "
                             "(int or str) and string names")
        out[int(key)] = str(value)
    return out
