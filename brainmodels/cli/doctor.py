"""``brainmodels doctor``: what a bug report needs, and whether this environment can run the jobs.

It prints Python and the platform, where brainmodels is installed, the version of every declared
dependency (and whether it satisfies ``pyproject.toml``), JAX's backend and devices, whether
brian2 can compile its code, and where outputs and caches go. Exit code 1 when a required
check fails, so scripts can call it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

#: packages worth naming in a bug report even when they are not direct dependencies
_ALSO_SHOW = ("jaxlib", "rsatoolbox", "himalaya", "brainpy", "Cython")


def register(sub) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check this environment and print what a bug report needs",
        description=(
            "Print Python, platform, brainmodels' location, the version of every declared "
            "dependency (checked against its range), JAX's backend and devices, whether brian2 "
            "can compile, and where outputs and caches go. Exits 1 if a required check fails."
        ),
    )
    parser.add_argument("--no-compile-check", action="store_true",
                        help="skip the brian2 compile test (a few seconds on a cold cache)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.set_defaults(func=run)


def _dependencies() -> tuple[list[dict], bool]:
    """Each declared run-time requirement of brainmodels: installed version, satisfied?"""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    rows, ok = [], True
    for text in requires("brainmodels") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra's requirement, or another Python's
        try:
            have = version(req.name)
        except PackageNotFoundError:
            have = None
        good = have is not None and req.specifier.contains(have, prereleases=True)
        ok &= good
        rows.append({"package": req.name, "version": have, "required": str(req.specifier) or "any",
                     "ok": good})
    for name in _ALSO_SHOW:
        try:
            rows.append({"package": name, "version": version(name), "required": "optional",
                         "ok": True})
        except PackageNotFoundError:
            pass
    return rows, ok


def _jax() -> dict:
    import jax

    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
    }


def _brian2_compiles() -> dict:
    """Run a one-neuron network with brian2's Cython target (its default on a machine with a
    C compiler); brian2 silently falls back to slow numpy code when compilation fails."""
    import brian2 as b2

    b2.start_scope()
    previous = b2.prefs.codegen.target
    b2.prefs.codegen.target = "cython"
    try:
        group = b2.NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", method="exact")
        b2.run(0.1 * b2.ms, namespace={})
    except Exception as err:  # brian2 raises many kinds; the message is the report
        return {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0]}",
                "hint": "brian2 needs a C compiler and Cython (e.g. apt-get install "
                        "build-essential; pip install cython); it falls back to numpy otherwise"}
    finally:
        b2.prefs.codegen.target = previous
    del group
    return {"ok": True, "target": "cython"}


def _places() -> dict:
    from nilearn.datasets import get_data_dirs

    cwd = Path.cwd()
    return {
        "working_directory": str(cwd),
        "working_directory_writable": os.access(cwd, os.W_OK),
        "default_outputs": "DIR given by --out (demo: ./demo_output)",
        "nilearn_data": get_data_dirs()[0],
        "numba_cache": os.environ.get("NUMBA_CACHE_DIR", "__pycache__ beside brainmodels' modules"),
        "brian2_cython_cache": str(Path.home() / ".cython" / "brian_extensions"),
    }


def collect(*, compile_check: bool = True) -> tuple[dict, bool]:
    """Everything ``brainmodels doctor`` reports, and whether the required checks pass."""
    import brainmodels

    deps, deps_ok = _dependencies()
    report = {
        "brainmodels": {"version": brainmodels.__version__,
                        "location": str(Path(brainmodels.__file__).parent)},
        "python": {"version": platform.python_version(), "executable": sys.executable,
                   "platform": platform.platform()},
        "dependencies": deps,
        "jax": _jax(),
        "places": _places(),
    }
    if compile_check:
        report["brian2_compile"] = _brian2_compiles()
    return report, deps_ok


def _text(report: dict) -> str:
    lines = [f"brainmodels {report['brainmodels']['version']} at {report['brainmodels']['location']}",
             f"python {report['python']['version']} ({report['python']['executable']}) on "
             f"{report['python']['platform']}", "", "dependencies:"]
    for row in report["dependencies"]:
        mark = "ok " if row["ok"] else "BAD"
        need = "(optional)" if row["required"] == "optional" else f"needs {row['required']}"
        lines.append(f"  {mark} {row['package']:<16} {row['version'] or 'missing':<14} {need}")
    j = report["jax"]
    lines += ["", f"jax: backend {j['backend']}, devices {', '.join(j['devices'])}, "
                  f"x64 {'on' if j['x64'] else 'off'}, compilation cache "
                  f"{j['compilation_cache_dir'] or 'off'}"]
    if "brian2_compile" in report:
        b = report["brian2_compile"]
        lines.append("brian2: compiles with cython" if b["ok"]
                     else f"brian2: CANNOT compile ({b['error']}); {b['hint']}")
    lines += ["", "places:"] + [f"  {k}: {v}" for k, v in report["places"].items()]
    return "\n".join(lines)


def run(args) -> int:
    report, ok = collect(compile_check=not args.no_compile_check)
    print(json.dumps(report, indent=2) if args.json else _text(report))
    if not ok:
        from brainmodels._deps import install_hint

        bad = [r["package"] for r in report["dependencies"] if not r["ok"]]
        print(f"\nbrainmodels doctor: {len(bad)} declared dependencies missing or out of range: "
              f"{', '.join(bad)}; reinstall with `make demo` in a checkout, or "
              f"{install_hint(bad[0])}", file=sys.stderr)
    return 0 if ok else 1
