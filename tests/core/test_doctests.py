"""Every ``>>>`` example in the library's docstrings runs and prints what it says.

The modules are found through the installed package (``brainmodels`` and the folders mapped
into it: ``brainmodels.encoders`` = ``encoders/`` ...), so the examples run under the names a
user imports, which ``pytest --doctest-modules`` over the source folders would not give.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import brainmodels


def _module_names() -> list[str]:
    names = ["brainmodels"]
    for info in pkgutil.walk_packages(brainmodels.__path__, prefix="brainmodels."):
        names.append(info.name)
    for sub in ("encoders", "snn", "datasets"):  # mapped folders: found through their package
        package = importlib.import_module(f"brainmodels.{sub}")
        names += [info.name for info in pkgutil.walk_packages(package.__path__,
                                                               prefix=f"brainmodels.{sub}.")]
    return sorted(set(names))


MODULES = _module_names()
_FINDER = doctest.DocTestFinder(exclude_empty=True)
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples(module) -> list[doctest.DocTest]:
    """The module's doctests (the finder skips objects another module defines)."""
    return [t for t in _FINDER.find(module, module.__name__) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    with np.printoptions(legacy="1.25"):  # scalar reprs as 0.5, not np.float64(0.5)
        for test in _examples(module):
            runner.run(test, out=report.append)
    assert runner.failures == 0, f"docstring examples of {name} failed:\n" + "".join(report)


def test_the_public_api_has_examples():
    """Guards the walk above: if it found no modules or no examples, the test would pass empty."""
    count = sum(len(t.examples) for name in MODULES
                for t in _examples(importlib.import_module(name)))
    assert len(MODULES) > 40 and count > 50, (len(MODULES), count)
