"""Helpers shared by the subcommands: output folders, progress bars, tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from brainmodels._io import MANIFEST_NAME


def add_out_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--out DIR``, written as a whole by :func:`brainmodels.cli.main` (one transaction)."""
    parser.add_argument(
        "--out", type=Path, default=Path(default), metavar="DIR",
        help=f"output folder (default: {default}), written all or nothing: the command writes a "
             "temporary folder next to it and renames it into place when done. An existing DIR "
             "is replaced only if it is empty or a previous brainmodels output (its "
             f"{MANIFEST_NAME} lists every file in it); a folder with other files is refused",
    )
    parser.set_defaults(writes_out=True)


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_data_arguments(parser: argparse.ArgumentParser, *, n_stimuli: int, resolution: float) -> None:
    """``--data PATH|synthetic`` plus the size of the synthetic dataset generated for ``synthetic``."""
    parser.add_argument("--data", default="synthetic", metavar="PATH|synthetic",
                        help="netCDF dataset, or 'synthetic' to generate one (default)")
    parser.add_argument("--n-stimuli", type=int, default=n_stimuli,
                        help=f"stimuli of the synthetic dataset (default {n_stimuli})")
    parser.add_argument("--resolution", type=float, default=resolution, metavar="MM",
                        help=f"voxel size of the synthetic dataset in mm (default {resolution:g})")


def load_fmri_data(args: argparse.Namespace, *, verbose: bool = False):
    """The Dataset named by ``--data``: a netCDF file, or the synthetic dataset (seeded by ``--seed``)."""
    import xarray as xr

    if args.data == "synthetic":
        from brainmodels.datasets import make_synthetic_fmri

        if verbose:
            print("generating the synthetic fMRI dataset ...", flush=True)
        return make_synthetic_fmri(n_stimuli=args.n_stimuli, resolution_mm=args.resolution,
                                   seed=args.seed)
    from brainmodels.data import load_netcdf

    ds = load_netcdf(args.data)
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"{args.data} holds a single array; expected a Dataset with betas")
    return ds


def load_npy(path, what: str):
    """A .npy array (never a pickle: no code runs from a data file); errors name the file."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{what} {path} is not a readable .npy array: {err}") from err


#: Off a terminal (a log file, a batch job, a notebook) a progress bar is one line per this
#: many seconds, the first after as long: commands shorter than this print nothing.
LOG_INTERVAL = 60.0


class _Lines:
    """A stream for tqdm off a terminal: each refresh is written as one whole line, so that a
    log reads ``train: 40%|####      | 1200/3000 [08:00<12:00, 2.50it/s]`` line by line
    instead of carriage returns; the blank refresh that clears the bar is dropped."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable=None, *, total=None, desc: str = "", disable: bool | None = None):
    """A tqdm progress bar on stderr.

    On a terminal it is redrawn in place. Off one (``disable=None``: a log file, a batch job)
    it is a plain line every :data:`LOG_INTERVAL` seconds, the first after that long, so a
    long run can be followed with ``tail -f`` and a short one stays silent. ``disable=True``
    silences it; ``disable=False`` forces the redrawn bar.
    """
    if disable is None and not sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, file=_Lines(sys.stderr), ascii=True,
                    ncols=100, mininterval=LOG_INTERVAL, delay=LOG_INTERVAL, leave=False)
    return tqdm(iterable, total=total, desc=desc, disable=bool(disable), file=sys.stderr,
                dynamic_ncols=True, leave=False)


def format_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".3f") -> str:
    """Plain-text table of ``rows`` (a list of dicts with the same keys)."""
    if not rows:
        return "(empty)"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
