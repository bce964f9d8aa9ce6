"""JAX's persistent compilation cache: on by default in a user folder, movable, switchable off,
never overriding the user's own JAX setting, silent when the folder is unusable. Each case
runs in a fresh process (the setting is made when brainmodels is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# a jitted run (small ridge fits run on the host and compile nothing); every compilation is
# stored in these subprocesses (threshold 0 s), whatever the machine's speed
FIT = ("import numpy as np; from brainmodels import kuramoto as km; "
       "km.simulate(km.KuramotoParams(coupling=1.0, omega=np.linspace(-1, 1, 64)), "
       "np.zeros(64), dt=0.05, steps=200, record_every=10)")


def _run(code: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("BRAINMODELS_JAX_CACHE", "JAX_COMPILATION_CACHE_DIR",
                         "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}
    out = subprocess.run([sys.executable, "-c", code + "\nimport jax, json; print(json.dumps("
                          "{'dir': jax.config.jax_compilation_cache_dir}))"],
                         env={**base, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {"dir": json.loads(out.stdout.strip().splitlines()[-1])["dir"], "err": out.stderr}


def test_default_folder_is_the_user_cache_and_a_second_process_reuses_it(tmp_path):
    first = _run("import brainmodels\n" + FIT, XDG_CACHE_HOME=str(tmp_path))
    folder = tmp_path / "brainmodels" / "jax"
    assert first["dir"] == str(folder)
    stored = sorted(p.name for p in folder.iterdir())
    assert stored, "the fit's compiled programs were not stored"
    second = _run("import brainmodels\n" + FIT, XDG_CACHE_HOME=str(tmp_path))
    assert second["dir"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == stored  # reused, not compiled anew


def test_the_variable_moves_it_or_switches_it_off(tmp_path):
    assert _run("import brainmodels\n" + FIT,
                BRAINMODELS_JAX_CACHE=str(tmp_path / "c"))["dir"] == str(tmp_path / "c")
    assert any((tmp_path / "c").iterdir())
    off = _run("import brainmodels\n" + FIT, BRAINMODELS_JAX_CACHE="off",
               XDG_CACHE_HOME=str(tmp_path / "x"))
    assert off["dir"] is None and not (tmp_path / "x").exists()


@pytest.mark.parametrize("jax_first", [False, True])
def test_the_users_own_jax_setting_wins_whatever_the_import_order(tmp_path, jax_first):
    mine = str(tmp_path / "mine")
    setup = (f"import jax; jax.config.update('jax_compilation_cache_dir', {mine!r})\n"
             "import brainmodels\n") if jax_first else "import brainmodels\n"
    env = {} if jax_first else {"JAX_COMPILATION_CACHE_DIR": mine}
    res = _run(setup + FIT, BRAINMODELS_JAX_CACHE=str(tmp_path / "ours"), **env)
    assert res["dir"] == mine and not (tmp_path / "ours").exists()


def test_jax_imported_before_brainmodels_still_gets_the_cache(tmp_path):
    res = _run("import jax\nimport brainmodels\n" + FIT,
               BRAINMODELS_JAX_CACHE=str(tmp_path / "c"))
    assert res["dir"] == str(tmp_path / "c") and any((tmp_path / "c").iterdir())


def test_an_unusable_folder_is_skipped_silently(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = _run("import brainmodels\n" + FIT, BRAINMODELS_JAX_CACHE=str(blocker / "jax"))
    assert res["dir"] is None
    assert "compilation cache" not in res["err"]
