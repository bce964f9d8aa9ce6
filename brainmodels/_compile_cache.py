"""JAX's persistent compilation cache, on by default, so that a second process starts warm.

Compilation dominates the first call of every jitted function (DESIGN.md, performance). JAX
can keep compiled programs on disk and reuse them in later processes; brainmodels turns that
on when it is imported, in a per-user cache folder:

* ``$BRAINMODELS_JAX_CACHE`` (a folder), or ``off`` to leave JAX's cache alone;
* otherwise ``$XDG_CACHE_HOME/brainmodels/jax`` (default ``~/.cache/brainmodels/jax``).

Before JAX is imported the folder is set through JAX's own ``JAX_COMPILATION_CACHE_DIR``
environment variable, which child processes inherit (they share the cache); after, through
``jax.config``. A cache the user configured for JAX itself (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", ...)`` before importing brainmodels) wins. A
folder that cannot be created or written is skipped without a word (JAX would warn on every
compilation). Programs that compile in under :data:`MIN_COMPILE_SECONDS` are not stored.
``brainmodels doctor`` prints the folder in use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Environment variable naming the cache folder (or ``off``).
ENV = "BRAINMODELS_JAX_CACHE"
#: Programs compiling faster than this are not written (JAX's default, 1 s, would skip the
#: small calls whose compile time users feel most: 0.1-1 s).
MIN_COMPILE_SECONDS = 0.1
_OFF = {"off", "0", "false", "no", "none", ""}


def cache_dir() -> Path | None:
    """The folder brainmodels would use, or None when switched off.

    Examples
    --------
    >>> import os
    >>> os.environ[ENV] = "off"
    >>> cache_dir() is None
    True
    >>> del os.environ[ENV]
    """
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brainmodels" / "jax"


def _usable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def configure() -> Path | None:
    """Point JAX's persistent cache at :func:`cache_dir` unless the user set one; return the
    folder now in use by JAX (None: no persistent cache)."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax = sys.modules.get("jax")
    if jax is not None and getattr(jax.config, "jax_compilation_cache_dir", None):
        return Path(jax.config.jax_compilation_cache_dir)
    folder = cache_dir()
    if folder is None or not _usable(folder):
        return None
    if jax is None:  # read by JAX when it is imported: `import brainmodels` stays cheap
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                              str(MIN_COMPILE_SECONDS))
    else:
        jax.config.update("jax_compilation_cache_dir", str(folder))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # else the user's
            jax.config.update("jax_persistent_cache_min_compile_time_secs",
                              MIN_COMPILE_SECONDS)
    return folder
