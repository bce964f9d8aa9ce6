"""All-or-nothing output: nothing writes a half file or a half set of files.

Two levels:

* :func:`atomic_path` (one file): the data are written to a temporary file in the
  destination folder and renamed over the destination only once the write succeeded.
* :func:`output_dir` (one folder, the whole output of a command): the command writes into a
  fresh temporary folder next to the destination (same file system); at the end a manifest
  (:data:`MANIFEST_NAME`: the command line, the version, the time and every file with its size
  and sha256) is written last and the folder is renamed into place. A failure or Ctrl-C
  removes the temporary folder and leaves the destination as it was.

The rule for an existing destination folder: it is replaced only if it is empty or holds a
previous brainmodels output, i.e. a manifest and nothing that the manifest does not list
(listed files still have their recorded size; folders are allowed only on the way to listed
files or when listed). Anything else is a user's folder and is refused, so that no user file is
ever deleted. Replacing renames the old folder aside, renames the new one in, then deletes
from the old one only the files its manifest lists. While a command writes to ``DIR``, an
exclusive lock file ``.DIR.brainmodels-lock`` next to it (``flock``, released by the kernel even
if the process is killed) makes a second command writing to the same folder fail with a clear
error. The mechanics live in :mod:`brainmodels._outputs`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from brainmodels._outputs import (
    MANIFEST_NAME,
    OLD_SUFFIX,
    TMP_SUFFIX,
    OutputFolderBusy,
    OutputFolderError,
    acquire_lock,
    check_interrupts,
    free_sibling,
    note_outcome,
    read_manifest,
    read_only,
    recover,
    redeliver,
    release_lock,
    remove_output,
    signals_deferred,
    unlisted,
    walk,
    write_manifest,
)

__all__ = ["atomic_path", "write_text_atomic", "savefig_atomic", "output_dir", "OutputDir",
           "read_manifest", "MANIFEST_NAME", "OutputFolderError", "OutputFolderBusy"]

#: Fault injection for the tests (``mkdtemp``, ``enter``, ``file:N``, ``commit``, ``swap``,
#: ``cleanup``): the process sends itself SIGINT at that point.
_FAULT_ENV = "BRAINMODELS_FAULT_INJECT"
_files_written = 0


# ----------------------------------------------------------------------------- one file


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its parent folder is created if missing.
    suffix : str, optional
        Suffix for the temporary file (defaults to the destination's suffixes, so that
        libraries which infer the format from the extension, e.g. nibabel, still work).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    global _files_written
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    check_interrupts()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp creates 0600; give the file the usual umask-based mode
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _files_written += 1
    _fault(f"file:{_files_written}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fault(point: str) -> None:
    if os.environ.get(_FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGINT)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def savefig_atomic(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the destination's extension)."""
    dest = Path(path)
    fmt = kwargs.pop("format", dest.suffix.lstrip(".") or "png")
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)
    return dest


# ----------------------------------------------------------------------------- one folder


def output_dir(out: str | os.PathLike, *, command: Sequence[str] | None = None,
               inputs: Sequence[str | os.PathLike] = ()) -> OutputDir:
    """A transaction that writes a whole output folder or nothing (see the module docstring).

    Parameters
    ----------
    out : path-like
        The output folder. Missing parent folders are created (and removed again if nothing
        is written).
    command : sequence of str, optional
        The command line recorded in the manifest.
    inputs : sequence of path-like
        Files the command reads: refused if they lie inside an existing ``out`` (replacing it
        would delete them).

    Returns
    -------
    OutputDir
        A context manager; inside it, write into ``.path`` (the temporary folder).

    Raises
    ------
    OutputFolderError
        On entering: ``out`` is a file, read-only, the current folder, holds files that are no
        previous brainmodels output, or its parent cannot be written.
    OutputFolderBusy
        Another command is writing to ``out``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with output_dir(out) as tx:
    ...     _ = (tx.path / "a.txt").write_text("complete")
    >>> sorted(p.name for p in out.iterdir())
    ['.brainmodels-manifest.json', 'a.txt']
    >>> [f["path"] for f in read_manifest(out)["files"]]
    ['a.txt']
    """
    return OutputDir(out, command=command, inputs=inputs)


class OutputDir:
    """Write a whole output folder or nothing; create with :func:`output_dir`.

    Attributes
    ----------
    out : Path
        The destination as given.
    path : Path
        The temporary folder to write into (exists inside the ``with`` block).
    manifest : dict or None
        The manifest written on success.
    """

    def __init__(self, out: str | os.PathLike, *, command: Sequence[str] | None = None,
                 inputs: Sequence[str | os.PathLike] = ()):
        self.out = Path(out)
        self.command = list(command) if command is not None else None
        self.inputs = [Path(os.path.realpath(p)) for p in inputs]
        self.real = Path(os.path.realpath(os.path.abspath(self.out)))
        self.path = self.real  # replaced by the temporary folder on entering
        self.manifest: dict[str, Any] | None = None
        self._lock: tuple[int, Path] | None = None
        self._created: list[Path] = []
        self._cancelled = False

    # -- entering: checks, lock, temporary folder

    def __enter__(self) -> OutputDir:
        global _files_written
        _files_written = 0  # fault injection counts the files of this output
        try:
            self._check_destination()
            self._lock = acquire_lock(self.real, self.out)
            recover(self.real)
            self._check_replaceable(self._classify())
            # a signal while the temporary folder is made waits until self.path names it, so
            # that the folder is never left behind
            with signals_deferred() as received:
                self.path = Path(tempfile.mkdtemp(prefix=f".{self.real.name}.",
                                                  suffix=TMP_SUFFIX, dir=self.real.parent))
                _fault("mkdtemp")
            for sig in received:
                signal.raise_signal(sig)
            _fault("enter")
        except BaseException as err:
            if self.path != self.real:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = self.real
            existed = self.real.exists()
            self._release()
            self._remove_created()
            if not isinstance(err, OutputFolderError):  # those say what was left already
                note_outcome(err, f"{self.out} is unchanged (no partial output was written)"
                             if existed else f"no output was written ({self.out} was not "
                             "created)")
            raise
        return self

    def _check_destination(self) -> None:
        real, shown = self.real, self.out
        if real.parent == real:
            raise OutputFolderError(f"--out {shown} is the root folder; choose a folder inside it")
        if os.path.islink(shown) and not real.exists():  # never create folders elsewhere
            raise OutputFolderError(f"--out {shown} is a symlink to {os.readlink(shown)}, which "
                                    "does not exist; point it at a folder or choose another --out")
        if real.exists() and not real.is_dir():
            raise OutputFolderError(f"--out {shown} is a file, not a folder; choose a folder "
                                    f"path, e.g. --out {free_sibling(real, shown)}")
        if real.exists():
            if read_only(real):
                raise OutputFolderError(f"--out {shown} is a read-only folder; make it writable "
                                        f"or choose another, e.g. --out {free_sibling(real, shown)}")
            cwd = Path(os.path.realpath(os.getcwd()))
            if cwd == real or real in cwd.parents:
                raise OutputFolderError(f"--out {shown} is (or contains) the current folder, which "
                                        "brainmodels will not replace; give a new subfolder, e.g. "
                                        f"--out {shown / 'brainmodels_output'}")
        ancestor = real.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise OutputFolderError(f"cannot create --out {shown}: {ancestor} is a file, not a folder")
        if read_only(ancestor):
            raise OutputFolderError(f"cannot write --out {shown}: {ancestor} is read-only; choose "
                                    "a folder where you can write")
        missing = [p for p in [real.parent, *real.parent.parents] if not p.exists()]
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            except OSError as err:
                raise OutputFolderError(f"cannot create {folder} for --out {shown}: "
                                        f"{err.strerror or err}") from err
            self._created.append(folder)

    def _classify(self) -> str:
        """``missing``, ``empty``, ``previous`` (a brainmodels output) or ``user: REASON``."""
        if not self.real.exists():
            return "missing"
        if not self.real.is_dir():
            return "user: it is now a file"
        entries = walk(self.real)
        if not entries:
            return "empty"
        manifest = read_manifest(self.real)
        if manifest is None:
            shown = ", ".join(rel for rel, _ in entries[:3]) + (", ..." if len(entries) > 3 else "")
            why = "a manifest brainmodels cannot read" if (self.real / MANIFEST_NAME).exists() \
                else "no brainmodels manifest"
            return f"user: it holds files brainmodels did not write ({shown}; {why})"
        foreign = unlisted(entries, manifest)
        if foreign:
            return (f"user: it holds files that its manifest does not list or that changed since "
                    f"brainmodels wrote them ({', '.join(foreign[:3])}{', ...' * (len(foreign) > 3)})")
        return "previous"

    def _check_replaceable(self, state: str) -> None:
        if state.startswith("user"):
            raise OutputFolderError(
                f"--out {self.out} is not a brainmodels output folder: {state[6:]}; brainmodels "
                "replaces only empty folders and its own previous outputs, so nothing was "
                f"changed; choose a new folder, e.g. --out {free_sibling(self.real, self.out)}")
        if state != "missing":
            for p in self.inputs:
                if p == self.real or self.real in p.parents:
                    raise OutputFolderError(
                        f"--out {self.out} holds the input {p}, which replacing the folder would "
                        f"delete; choose another --out, e.g. {free_sibling(self.real, self.out)}")

    # -- leaving: commit or discard

    def cancel(self) -> None:
        """Discard the output on leaving the ``with`` block, as on an error."""
        self._cancelled = True

    def final(self, path: str | os.PathLike) -> Path:
        """Where ``path`` (inside :attr:`path`) ends up: the same place under :attr:`out`."""
        return self.out / Path(path).relative_to(self.path)

    def __exit__(self, exc_type, exc, tb) -> bool:
        existed, committed = self.real.exists(), False
        try:
            if exc is None and not self._cancelled:
                try:
                    self._commit()
                    committed = True
                except BaseException as err:
                    if self.path.exists():  # the commit failed before the swap
                        self._discard(err, existed)
                    else:  # renamed into place (or aside): only the signal came late
                        committed = True
                    raise
            else:
                self._discard(exc, existed)
        finally:
            self._release()
            if not committed:
                self._remove_created()  # after the lock file in the parent is gone
        return False

    def _commit(self) -> None:
        self.manifest = write_manifest(self.path, self.command)
        os.chmod(self.path, 0o777 & ~_umask())
        _fault("commit")
        check_interrupts()
        with signals_deferred() as received:
            state = self._classify()
            if state.startswith("user"):
                kept = free_sibling(self.real, self.out)
                os.rename(self.path, self.real.parent / kept.name)
                raise OutputFolderError(
                    f"--out {self.out} changed while the command ran ({state[6:]}); the complete "
                    f"new output was saved as {kept} instead")
            self._swap(state)
        if received:
            redeliver(received, f"{self.out} holds the complete new output")

    def _swap(self, state: str) -> None:
        if state == "missing":
            os.rename(self.path, self.real)
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{self.real.name}.", suffix=OLD_SUFFIX,
                                      dir=self.real.parent))
        os.rename(self.real, aside)  # onto the empty aside folder: atomic on POSIX
        _fault("swap")
        try:
            os.rename(self.path, self.real)
        except BaseException:
            os.rename(aside, self.real)
            raise
        _fault("cleanup")
        remove_output(aside, self.out)

    def _discard(self, exc: BaseException | None, existed: bool) -> None:
        with signals_deferred():
            shutil.rmtree(self.path, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename and str(exc.filename).startswith(
                str(self.path) + os.sep):
            exc.filename = str(self.final(exc.filename))
        note = (f"{self.out} is unchanged (no partial output was written)" if existed
                else f"no output was written ({self.out} was not created)")
        note_outcome(exc, note)

    def _remove_created(self) -> None:
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _release(self) -> None:
        if self._lock is not None:
            release_lock(*self._lock)
            self._lock = None
