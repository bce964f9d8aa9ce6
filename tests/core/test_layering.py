"""Package layering (DESIGN.md), checked on the source with the ``ast`` module.

import-linter cannot follow setuptools' ``package-dir`` mapping (``brainmodels.encoders`` lives
in ``encoders/``), so the contracts are checked here directly:

* ``brainmodels.datasets`` imports no model code;
* ``brainmodels.encoders`` and ``brainmodels.snn`` never import each other;
* the core (``brainmodels/``) imports none of encoders / snn / datasets except inside ``cli/``
  and ``representations/`` (where models meet data), which nothing else imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"brainmodels": "brainmodels", "encoders": "brainmodels.encoders",
            "snn": "brainmodels.snn", "datasets": "brainmodels.datasets"}
MODEL_CODE = ("brainmodels.encoders", "brainmodels.snn", "brainmodels.rsa", "brainmodels.kuramoto",
              "brainmodels.akorn", "brainmodels.wave_rnn", "brainmodels.whitening", "brainmodels.cli")


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names of every module imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = package.split(".")
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _modules(folder: str):
    pkg = PACKAGES[folder]
    for path in (ROOT / folder).rglob("*.py"):
        rel = path.relative_to(ROOT / folder).with_suffix("").parts
        sub = ".".join([pkg, *rel[:-1]])
        yield path, rel, _imports(path, sub)


def _hits(imported: set[str], forbidden) -> list[str]:
    return sorted(m for m in imported for f in forbidden if m == f or m.startswith(f + "."))


def test_datasets_import_no_model_code():
    bad = {str(p): _hits(imps, MODEL_CODE) for p, _, imps in _modules("datasets")}
    assert not {k: v for k, v in bad.items() if v}


def test_encoders_and_snn_are_independent():
    bad = {str(p): _hits(imps, ["brainmodels.snn"]) for p, _, imps in _modules("encoders")}
    bad |= {str(p): _hits(imps, ["brainmodels.encoders"]) for p, _, imps in _modules("snn")}
    assert not {k: v for k, v in bad.items() if v}


def test_core_imports_subpackages_only_in_cli_and_representations():
    """``brainmodels.representations`` is the one place where models meet data (DESIGN.md)."""
    forbidden = ["brainmodels.encoders", "brainmodels.snn", "brainmodels.datasets"]
    bad = {
        str(p): _hits(imps, forbidden)
        for p, rel, imps in _modules("brainmodels")
        if rel[0] not in ("cli", "representations") and rel != ("__init__",)
    }
    assert not {k: v for k, v in bad.items() if v}


def test_nothing_but_the_cli_imports_representations():
    bad = {}
    for folder in PACKAGES:
        for path, rel, imps in _modules(folder):
            if folder == "brainmodels" and rel[0] in ("cli", "representations"):
                continue
            bad[str(path)] = _hits(imps, ["brainmodels.representations"])
    assert not {k: v for k, v in bad.items() if v}


def test_the_checker_sees_relative_imports():
    """Guard against a checker that silently passes: it resolves a known relative import."""
    imps = _imports(ROOT / "brainmodels" / "brainmaps.py", "brainmodels")
    assert "brainmodels.data" in imps and "brainmodels._io" in imps


def test_no_library_module_imports_the_cli():
    """Long work takes a progress callable; only the CLI and scripts choose tqdm (DESIGN.md).
    ``snn/train.py`` imported the CLI's progress bar."""
    bad = {}
    for folder in PACKAGES:
        for path, rel, imps in _modules(folder):
            if folder == "brainmodels" and (rel[0] == "cli" or rel == ("__main__",)):
                continue
            bad[str(path)] = _hits(imps, ["brainmodels.cli"])
    assert not {k: v for k, v in bad.items() if v}
