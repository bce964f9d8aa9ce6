"""All-or-nothing output folders (brainmodels._io.output_dir and every command with --out).

After anything (success, error, Ctrl-C, SIGTERM, a second command on the same folder) the output
folder holds either its previous content or one complete new output: a manifest that lists
exactly the files present, with their sizes and sha256. No user file is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainmodels._io import (
    MANIFEST_NAME,
    OutputFolderBusy,
    OutputFolderError,
    output_dir,
    read_manifest,
)
from brainmodels.cli import main

# the smallest real writing command: 4 files, a few seconds in a fresh process
SYNTHETIC = ["data", "synthetic", "--n-stimuli", "8", "--repeats", "2", "--resolution", "20",
             "--image-size", "8"]
SYNTHETIC_FILES = {"synthetic_fmri.nc", "synthetic_fmri_mask.nii.gz",
                   "synthetic_fmri_rois.nii.gz", "synthetic_fmri_rois.tsv"}


def _complete(out: Path) -> dict:
    """Assert ``out`` is one complete output: the manifest lists exactly the files present."""
    manifest = read_manifest(out)
    assert manifest is not None, f"{out} has no valid manifest: {sorted(os.listdir(out))}"
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MANIFEST_NAME}
    assert on_disk == {f["path"] for f in manifest["files"]}
    for f in manifest["files"]:
        data = (out / f["path"]).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"]
    return manifest


def _seed(manifest: dict) -> str:
    command = manifest["command"]
    return command[command.index("--seed") + 1]


def _no_leftovers(parent: Path) -> None:
    """No temporary folder, set-aside old output or lock file next to the outputs."""
    assert not [p.name for p in parent.iterdir() if "brainmodels-" in p.name]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """A previous output of `brainmodels data synthetic` (seed 1), made once; copy it per test."""
    out = tmp_path_factory.mktemp("previous") / "out"
    assert main([*SYNTHETIC, "--seed", "1", "--out", str(out)]) == 0
    assert _complete(out)["command"][-1] == str(out)
    return out


@pytest.fixture
def old(previous, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    return out


# ----------------------------------------------------------------------------- the transaction


def test_new_output_is_complete_with_manifest(tmp_path):
    out = tmp_path / "runs" / "a"  # missing parents are created
    with output_dir(out, command=["brainmodels", "x"]) as tx:
        assert tx.path.parent == out.parent and not out.exists()
        (tx.path / "sub").mkdir()
        (tx.path / "sub" / "b.txt").write_text("bb")
        (tx.path / "a.txt").write_text("a")
        assert tx.final(tx.path / "sub" / "b.txt") == out / "sub" / "b.txt"
    manifest = _complete(out)
    assert manifest["command"] == ["brainmodels", "x"] and manifest["folders"] == ["sub"]
    assert [f["path"] for f in manifest["files"]] == ["a.txt", "sub/b.txt"]
    assert manifest["brainmodels_version"] and manifest["created"].endswith("+00:00")
    _no_leftovers(out.parent)


def test_error_keeps_the_previous_output_and_says_so(old):
    before = _snapshot(old)
    with pytest.raises(RuntimeError) as exc, output_dir(old) as tx:
        (tx.path / "half.nc").write_text("half")
        raise RuntimeError("boom")
    assert _snapshot(old) == before
    assert exc.value.output_note == f"{old} is unchanged (no partial output was written)"
    _no_leftovers(old.parent)
    new = old.parent / "new" / "deeper"
    with pytest.raises(RuntimeError) as exc, output_dir(new):
        raise RuntimeError("boom")
    assert not (old.parent / "new").exists()  # the parents it made are removed again
    assert "was not created" in exc.value.output_note


def test_rerun_replaces_a_previous_output_completely(old):
    (old / "extra").mkdir()  # an empty folder is no user data...
    manifest = json.loads((old / MANIFEST_NAME).read_text())
    manifest["folders"].append("extra")  # ...but it must be listed, like everything else
    (old / MANIFEST_NAME).write_text(json.dumps(manifest))
    with output_dir(old) as tx:
        (tx.path / "only.txt").write_text("new")
    assert sorted(p.name for p in old.iterdir()) == [MANIFEST_NAME, "only.txt"]
    _complete(old)
    _no_leftovers(old.parent)


def test_user_folder_is_refused_and_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputFolderError, match="not a brainmodels output folder") as exc:
        with output_dir(out):
            pass
    assert str(out) in str(exc.value) and f"--out {out}-2" in str(exc.value)
    assert (out / "thesis.tex").read_text() == "years of work"
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("change", ["user file", "edited file", "bad manifest", "escaping path",
                                    "symlink"])
def test_a_previous_output_with_user_changes_is_refused(old, change):
    victim = old.parent / "victim.txt"
    victim.write_text("keep me")
    if change == "user file":
        (old / "notes.txt").write_text("mine")
    elif change == "edited file":
        with open(old / "synthetic_fmri_rois.tsv", "a") as fh:
            fh.write("my edit\n")
    elif change == "bad manifest":
        (old / MANIFEST_NAME).write_text("__import__('os').system('touch pwned')")
    elif change == "escaping path":  # a crafted manifest naming a file outside the folder
        manifest = json.loads((old / MANIFEST_NAME).read_text())
        manifest["files"].append({"path": "../victim.txt", "size": 7})
        (old / MANIFEST_NAME).write_text(json.dumps(manifest))
    else:  # a listed name that is a symlink to the user's file
        (old / "synthetic_fmri_rois.tsv").unlink()
        (old / "synthetic_fmri_rois.tsv").symlink_to(victim)
    before = _snapshot(old)
    with pytest.raises(OutputFolderError, match="nothing was changed"), output_dir(old):
        pass
    assert _snapshot(old) == before and victim.read_text() == "keep me"
    assert not (old.parent / "pwned").exists() and not Path("pwned").exists()


def test_out_is_a_file_or_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, not a folder"), output_dir(tmp_path / "f"):
        pass
    with pytest.raises(OutputFolderError, match="f is a file, not a folder"):
        with output_dir(tmp_path / "f" / "out"):
            pass
    assert (tmp_path / "f").read_text() == "x"


def test_read_only_folder_and_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)  # no write bit: refused even by root, who could write anyway
    try:
        with pytest.raises(OutputFolderError, match="is a read-only folder"), output_dir(ro):
            pass
        with pytest.raises(OutputFolderError, match="is read-only"), output_dir(ro / "out"):
            pass
        with pytest.raises(OutputFolderError, match="is read-only"), output_dir(ro / "a" / "b"):
            pass
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o755)


def test_symlinks_as_out(old, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(old)  # to a previous output: the folder it points at is replaced
    with output_dir(link) as tx:
        (tx.path / "new.txt").write_text("new")
    assert link.is_symlink() and sorted(os.listdir(old)) == [MANIFEST_NAME, "new.txt"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    with pytest.raises(OutputFolderError, match="which does not exist"), output_dir(dangling):
        pass
    assert not (tmp_path / "nowhere").exists()


def test_current_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputFolderError, match="current folder"), output_dir("."):
        pass


def test_second_writer_is_refused_while_the_first_writes(tmp_path, capsys):
    out = tmp_path / "out"
    with output_dir(out) as tx:
        with pytest.raises(OutputFolderBusy, match=f"another brainmodels command is writing to {out}"):
            with output_dir(out):
                pass
        assert main([*SYNTHETIC, "--out", str(out)]) == 2
        assert "another brainmodels command is writing to" in capsys.readouterr().err
        (tx.path / "first.txt").write_text("1")
    assert _complete(out)["files"][0]["path"] == "first.txt"
    with output_dir(out):  # the lock is released
        pass
    _no_leftovers(tmp_path)


def test_folder_changed_while_the_command_ran(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(OutputFolderError, match=f"saved as {out}-2 instead"):
        with output_dir(out) as tx:
            (tx.path / "result.txt").write_text("done")
            out.mkdir()
            (out / "user.txt").write_text("appeared meanwhile")
    assert (out / "user.txt").read_text() == "appeared meanwhile"
    assert (_complete(tmp_path / "out-2"))["files"][0]["path"] == "result.txt"


def test_leftovers_of_a_killed_command_are_tidied(old):
    stale = old.parent / ".out.abcd1234.brainmodels-tmp"
    stale.mkdir()
    (stale / "half.nc").write_text("half")
    other = old.parent / ".out.x.abcd1234.brainmodels-tmp"  # another folder's: not ours
    other.mkdir()
    aside = old.parent / ".out.efgh5678.brainmodels-old"  # killed between the two renames
    old.rename(aside)
    with output_dir(old) as tx:
        assert not stale.exists() and not aside.exists() and other.exists()
        assert sorted(os.listdir(old)) == sorted([*SYNTHETIC_FILES, MANIFEST_NAME])  # restored
        (tx.path / "new.txt").write_text("new")
    assert sorted(os.listdir(old)) == [MANIFEST_NAME, "new.txt"]


# ----------------------------------------------------------------------------- the commands


def test_command_refuses_input_inside_out_and_user_folders(old, tmp_path, capsys):
    data = old / "synthetic_fmri.nc"
    assert main(["encode", "--data", str(data), "--out", str(old)]) == 2
    err = capsys.readouterr().err
    assert f"--out {old} holds the input {data}" in err and err.count("\n") == 1
    (old / "mine.txt").write_text("x")
    assert main([*SYNTHETIC, "--out", str(old)]) == 2
    err = capsys.readouterr().err
    assert f"--out {old} is not a brainmodels output folder" in err and "mine.txt" in err
    assert (old / "mine.txt").read_text() == "x" and data.exists()
    assert main([*SYNTHETIC, "--out", str(old / "mine.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_command_rerun_replaces_its_previous_output(old, capsys):
    before = _snapshot(old)
    assert main([*SYNTHETIC, "--seed", "2", "--out", str(old)]) == 0
    assert "wrote 4 files" in capsys.readouterr().out
    manifest = _complete(old)
    assert _seed(manifest) == "2" and _snapshot(old) != before
    _no_leftovers(old.parent)


@pytest.mark.parametrize("point,finished", [("mkdtemp", False), ("enter", False),
                                            ("file:1", False), ("file:3", False),
                                            ("commit", False), ("swap", True),
                                            ("cleanup", True)])
def test_interrupt_at_every_stage(old, point, finished, monkeypatch, capsys):
    """SIGINT (a real signal, sent by the process to itself) at each stage of a real command."""
    before = _snapshot(old)
    monkeypatch.setenv("BRAINMODELS_FAULT_INJECT", point)
    assert main([*SYNTHETIC, "--seed", "3", "--out", str(old)]) == 130
    err = capsys.readouterr().err
    manifest = _complete(old)
    if finished:  # the signal arrived during the final renames: held until they were done
        assert _seed(manifest) == "3"
        assert f"interrupted; the command had finished: {old} holds the complete new output" in err
    else:
        assert _snapshot(old) == before
        assert f"interrupted; {old} is unchanged (no partial output was written)" in err
    _no_leftovers(old.parent)


def test_an_interrupt_swallowed_by_a_destructor_still_stops_the_commit(tmp_path, capsys):
    """Python only prints a KeyboardInterrupt raised in a __del__; the CLI's handler remembers."""
    from brainmodels.cli import _end_signals, _signals_interrupt

    class Finalised:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the KeyboardInterrupt is raised, and lost, here

    out = tmp_path / "out"
    try:
        with _signals_interrupt(), pytest.raises(KeyboardInterrupt), output_dir(out) as tx:
            (tx.path / "a.txt").write_text("a")
            Finalised()
            (tx.path / "b.txt").write_text("b")  # still running...
    finally:
        _end_signals()
    assert not out.exists()  # ...but nothing was committed
    assert "Exception ignored" not in capsys.readouterr().err
    _no_leftovers(tmp_path)


def test_finalisers_of_objects_an_interrupt_cut_short_are_quiet(tmp_path, monkeypatch, capsys):
    """An object whose __init__ the interrupt cut short is finalised when the interrupt's
    traceback is dropped, after the command's `with` block: its complaint is noise."""
    import brainmodels.cli as cli

    class HalfBuilt:
        def __init__(self):
            signal.raise_signal(signal.SIGINT)
            self.handle = 1  # never reached

        def __del__(self):
            del self.handle  # AttributeError, as in h5netcdf's File.__del__

    def command(args, argv):
        HalfBuilt()  # held by the KeyboardInterrupt's traceback until main has reported it

    monkeypatch.setattr(cli, "_run", command)
    hook = sys.unraisablehook
    assert cli.main(["doctor"]) == 130
    assert sys.unraisablehook is hook and not cli._saved
    err = capsys.readouterr().err
    assert "interrupted" in err and "Exception ignored" not in err and "Traceback" not in err


# `python -m brainmodels ARGS`, with Ctrl-C working as in a terminal even when the tests run as
# a background job of a non-interactive shell (which starts its children with SIGINT ignored)
_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from brainmodels.cli import main; sys.exit(main())")


def _run(args):
    return subprocess.Popen([sys.executable, "-c", _CLI, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=60.0):
    t0 = time.monotonic()
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout
        time.sleep(0.005)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_from_outside_leaves_old_or_complete_output(old, sig):
    """Ctrl-C (SIGINT) while computing, `kill` (SIGTERM) while writing the files."""
    before = _snapshot(old)
    proc = _run([*SYNTHETIC, "--seed", "4", "--out", str(old)])

    def temp_folders():
        return list(old.parent.glob(".out.*.brainmodels-tmp"))

    if sig == signal.SIGINT:
        _wait_for(lambda: temp_folders(), proc)
    else:
        _wait_for(lambda: any(any(t.iterdir()) for t in temp_folders()), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    manifest = _complete(old)
    if sig == signal.SIGINT:  # sent while it computed (seconds before it writes anything)
        assert proc.returncode == 130 and _snapshot(old) == before, err
    if proc.returncode == 130:
        assert f"{old} is unchanged" in err or "holds the complete new output" in err, err
        assert _snapshot(old) == before or "holds the complete new output" in err
    else:  # the signal came after the command had finished
        assert proc.returncode == 0, err
        assert _seed(manifest) == "4"
    assert "Traceback" not in err
    _no_leftovers(old.parent)


def test_two_commands_at_once_never_mix(tmp_path):
    out = tmp_path / "out"
    procs = [_run([*SYNTHETIC, "--seed", str(s), "--out", str(out)]) for s in (5, 6)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    for code, err in results:
        assert code == 0 or (code == 2 and "another brainmodels command is writing to" in err), err
    assert any(code == 0 for code, _ in results)
    manifest = _complete(out)
    assert sorted(f["path"] for f in manifest["files"]) == sorted(SYNTHETIC_FILES)
    _no_leftovers(tmp_path)
