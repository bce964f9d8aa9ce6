"""The ``brainmodels`` command line: one entry point, one module per subcommand.

Each subcommand lives in ``brainmodels/cli/<name>.py`` and defines ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit code). Parsers are built without importing JAX, so ``--help`` is instant; the
heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "data", "encode", "rsa", "simulate", "train", "bench", "doctor")


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
    """Run the command line; returns the exit code.

    A command with ``--out`` runs inside one :func:`brainmodels._io.output_dir` transaction:
    it writes into a temporary folder that replaces ``--out`` only when the command succeeded,
    so ``--out`` holds either its previous content or the complete new output.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    name = " ".join(str(a) for a in (args.command, getattr(args, "action", None),
                                      getattr(args, "model", None)) if a)
    try:
        return _guarded(args, argv, name)
    finally:
        # after the interrupt's traceback (and the frames it held) is gone: finalisers of
        # half-built objects ran under the quiet hook of _signals_interrupt, which ends here
        _end_signals()


def _guarded(args: argparse.Namespace, argv: list[str], name: str) -> int:
    try:
        with _signals_interrupt():
            return _run(args, argv)
    except Exception as err:
        from brainmodels._deps import MissingDependencyError

        if not isinstance(err, (ValueError, TypeError, MissingDependencyError,
                                *_file_errors())):
            raise  # a bug: keep the traceback
        print(f"brainmodels {name}: error: {_describe(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        note = getattr(err, "output_note", None)
        print(f"brainmodels {name}: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if not getattr(args, "writes_out", False):
        return int(args.func(args) or 0)
    from brainmodels._io import MANIFEST_NAME, output_dir

    with output_dir(args.out, command=["brainmodels", *argv], inputs=_inputs(args)) as tx:
        args.out = tx.path  # the command writes into the transaction's temporary folder
        code = int(args.func(args) or 0)
        if code != 0:
            tx.cancel()
    if code == 0:
        files = tx.manifest["files"]
        size = sum(f["size"] for f in files)
        print(f"wrote {len(files)} files ({size / 1e6:.1f} MB) to {tx.out}/ (listed in "
              f"{tx.out / MANIFEST_NAME}):")
        for f in files:
            print(f"  {f['path']}")
    return code


def _inputs(args: argparse.Namespace) -> list[str]:
    """Existing paths among the arguments (comma lists split): the files a command reads."""
    out = []
    for key, value in vars(args).items():
        if key == "out" or not isinstance(value, str | Path):
            continue
        out += [p for p in str(value).split(",") if p and os.path.exists(p)]
    return out


def _file_errors() -> tuple[type[BaseException], ...]:
    """Errors of unreadable files: OS errors (h5py's too), and nibabel's if it was used."""
    errors: list[type[BaseException]] = [OSError, EOFError]
    nibabel = sys.modules.get("nibabel.filebasedimages")
    if nibabel is not None:
        errors.append(nibabel.ImageFileError)
    return tuple(errors)


def _describe(err: BaseException) -> str:
    """One line: the message, the file it is about, and what became of the output."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    note = getattr(err, "output_note", None)
    return text + (f"; {note}" if note else "")


#: The unraisablehooks _signals_interrupt replaced, restored by _end_signals.
_saved: list[tuple] = []


@contextlib.contextmanager
def _signals_interrupt():
    """Ctrl-C, SIGTERM and SIGHUP end the command alike: its temporary output is removed.

    The handler remembers the signal, so one that Python swallows (it only prints an exception
    raised in a ``__del__`` or weakref callback) still stops the command before its output is
    committed; such swallowed interrupts are not printed, nor are the complaints of finalisers
    of objects whose ``__init__`` the interrupt cut short (h5netcdf's ``File.__del__`` then
    misses its attributes). Those finalisers run when the interrupt's traceback is dropped, after
    this block; :func:`_end_signals`, called then, restores the hook (the signal
    handlers are restored when the block ends).
    """
    from brainmodels._outputs import clear_interrupts, interrupt_handler, interrupts_taken

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_interrupts()
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        # an ignored SIGINT (a background job of a non-interactive shell) stays ignored
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, interrupt_handler)
    hook = sys.unraisablehook

    def quiet_interrupts(unraisable):
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) or interrupts_taken()):
            hook(unraisable)

    sys.unraisablehook = quiet_interrupts
    _saved.append(hook)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _end_signals() -> None:
    """Undo :func:`_signals_interrupt` once nothing of the command is left alive."""
    from brainmodels._outputs import clear_interrupts, interrupts_taken

    if not _saved:
        return
    hook = _saved.pop()
    if interrupts_taken():
        import gc

        gc.collect()  # finalisers in reference cycles, still under the quiet hook
    sys.unraisablehook = hook
    clear_interrupts()
