"""The mechanics of output folders, used by :class:`brainmodels._io.OutputDir`.

Manifests (written, read and checked), the lock file, the removal of an old output (only the
files its manifest lists), the tidying after a killed command, and holding signals during the
final renames. See :mod:`brainmodels._io` for the rules.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an O_EXCL lock file instead
    fcntl = None  # type: ignore[assignment]

#: Name of the manifest that marks a folder as a complete brainmodels output.
MANIFEST_NAME = ".brainmodels-manifest.json"
_FORMAT = "brainmodels-output/1"
TMP_SUFFIX = ".brainmodels-tmp"
OLD_SUFFIX = ".brainmodels-old"
LOCK_SUFFIX = ".brainmodels-lock"


class OutputFolderError(ValueError):
    """``--out`` cannot be written: a file, read-only, a user's folder, or busy."""


class OutputFolderBusy(OutputFolderError):
    """Another brainmodels command is writing to the same output folder."""


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a brainmodels output ``folder``, or None if it has no valid one.

    Valid means: JSON (nothing else is ever parsed), the brainmodels format, and every listed
    path relative, normalised and inside the folder (no ``..``, no absolute paths).
    """
    try:
        with open(Path(folder) / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    files, folders = data.get("files"), data.get("folders", [])
    if not isinstance(files, list) or not isinstance(folders, list):
        return None
    if not all(isinstance(f, dict) and _safe_relpath(f.get("path")) and
               isinstance(f.get("size"), int) for f in files):
        return None
    if not all(_safe_relpath(d) for d in folders):
        return None
    return data


def _safe_relpath(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        return False
    parts = rel.split("/")
    return all(p not in ("", ".", "..") for p in parts) and rel != MANIFEST_NAME


def note_outcome(exc: BaseException | None, note: str) -> None:
    """Say what became of the output, on the exception (the CLI prints ``output_note``)."""
    if exc is not None and getattr(exc, "output_note", None) is None:
        exc.output_note = note  # type: ignore[attr-defined]
        exc.add_note(note)


def free_sibling(real: Path, shown: Path) -> Path:
    n = 2
    while (real.parent / f"{real.name}-{n}").exists():
        n += 1
    return shown.parent / f"{shown.name}-{n}"


def read_only(folder: Path) -> bool:
    """No write permission, or no write bit at all (respected even by root)."""
    return not os.access(folder, os.W_OK) or not stat.S_IMODE(folder.stat().st_mode) & 0o222


def walk(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Every entry under ``folder`` as (relative posix path, lstat); symlinks not followed."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        st = entry.stat(follow_symlinks=False)
        out.append((entry.name, st))
        if stat.S_ISDIR(st.st_mode):
            out += [(f"{entry.name}/{rel}", s) for rel, s in walk(Path(entry.path))]
    return out


def unlisted(entries: list[tuple[str, os.stat_result]], manifest: dict) -> list[str]:
    """Entries a manifest does not account for (or whose size changed)."""
    sizes = {f["path"]: f["size"] for f in manifest["files"]}
    folders = set(manifest.get("folders", []))
    for rel in sizes:
        parts = rel.split("/")
        folders |= {"/".join(parts[:i]) for i in range(1, len(parts))}
    out = []
    for rel, st in entries:
        if rel == MANIFEST_NAME and stat.S_ISREG(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):
            ok = rel in folders
        else:
            ok = rel in sizes and stat.S_ISREG(st.st_mode) and st.st_size == sizes[rel]
        if not ok:
            out.append(rel)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, command: list[str] | None) -> dict[str, Any]:
    from brainmodels import __version__

    files, folders = [], []
    for rel, st in walk(folder):
        if stat.S_ISDIR(st.st_mode):
            folders.append(rel)
        elif stat.S_ISREG(st.st_mode):
            files.append({"path": rel, "size": st.st_size, "sha256": _sha256(folder / rel)})
        else:
            raise OutputFolderError(f"the output holds {rel}, which is not a regular file")
    manifest = {
        "format": _FORMAT, "command": command, "brainmodels_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "files": files, "folders": folders,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def remove_output(folder: Path, shown: Path) -> None:
    """Delete from ``folder`` the files its manifest lists; keep it if anything else is left."""
    import warnings

    manifest = read_manifest(folder)
    if manifest is not None:
        root = Path(os.path.realpath(folder))
        for f in manifest["files"]:
            target = root / f["path"]
            # never through a symlinked folder: the parent must be the real listed folder
            if Path(os.path.realpath(target.parent)) == target.parent:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                    target.unlink()
        listed = sorted(set(manifest.get("folders", [])), key=lambda d: -d.count("/"))
        for d in listed:
            with contextlib.suppress(OSError):
                (root / d).rmdir()
        with contextlib.suppress(FileNotFoundError):
            (root / MANIFEST_NAME).unlink()
    try:
        folder.rmdir()
    except OSError:
        kept = free_sibling(Path(os.path.realpath(folder)).parent / f"{shown.name}.kept",
                             shown.parent / f"{shown.name}.kept")
        os.rename(folder, Path(os.path.realpath(folder)).parent / kept.name)
        warnings.warn(f"the previous {shown} held files brainmodels did not write; they were "
                      f"kept in {kept}", stacklevel=2)


def recover(real: Path) -> None:
    """Tidy after a killed command (we hold the lock, so no live process owns these)."""
    # exactly the names mkdtemp gave for this folder (8 random characters), not another's
    ours = re.compile(rf"\.{re.escape(real.name)}\.[a-z0-9_]{{8}}"
                      rf"({re.escape(TMP_SUFFIX)}|{re.escape(OLD_SUFFIX)})")
    for entry in sorted(os.scandir(real.parent), key=lambda e: e.name):
        match = ours.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        if match.group(1) == TMP_SUFFIX:
            shutil.rmtree(entry.path, ignore_errors=True)
        elif not real.exists():  # killed between the two renames: put the old output back
            os.rename(entry.path, real)
        else:
            remove_output(Path(entry.path), real)


def acquire_lock(real: Path, shown: Path) -> tuple[int, Path]:
    lock = real.parent / f".{real.name}{LOCK_SUFFIX}"
    busy = OutputFolderBusy(f"another brainmodels command is writing to {shown} (it holds the "
                            f"lock {lock}); wait for it to finish or choose another --out")
    while True:
        if fcntl is None:  # pragma: no cover - Windows
            try:
                return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), lock
            except FileExistsError:
                raise busy from None
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputFolderError(f"cannot write next to --out {shown}: "
                                    f"{err.strerror or err} ({lock})") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        try:  # the holder before us may have unlinked the file between our open and flock
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd, lock
        except FileNotFoundError:
            pass
        os.close(fd)


def release_lock(fd: int, lock: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()  # while still holding it (see acquire_lock)
    os.close(fd)


#: Signals taken by :func:`interrupt_handler` since :func:`clear_interrupts`.
_interrupts: list[int] = []


def interrupt_handler(signum: int, _frame: Any) -> None:
    """Signal handler: raise KeyboardInterrupt, and remember the signal.

    Python only prints an exception raised inside a ``__del__`` or weakref callback, so a
    signal that lands there would be lost; :func:`check_interrupts` raises it again at the
    next file and before the commit.
    """
    _interrupts.append(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def clear_interrupts() -> None:
    _interrupts.clear()


def interrupts_taken() -> bool:
    """Whether :func:`interrupt_handler` took a signal since :func:`clear_interrupts`."""
    return bool(_interrupts)


def check_interrupts() -> None:
    """Raise KeyboardInterrupt if :func:`interrupt_handler` took a signal that got lost."""
    if _interrupts:
        raise KeyboardInterrupt(signal.Signals(_interrupts[-1]).name)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM/SIGHUP during a few renames; yield the list of those received."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda s, _frame: received.append(s))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def redeliver(received: list[int], note: str) -> None:
    """Deliver signals held during the commit, now that it is done."""
    try:
        for sig in received:
            signal.raise_signal(sig)
    except BaseException as err:
        note_outcome(err, f"the command had finished: {note}")
        raise
