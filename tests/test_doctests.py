"""The examples in the modules' docstrings are run, so that none of them drifts from the code it shows."""

from __future__ import annotations

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "api", "benchmarks", "checkpoints", "demo", "evaluation", "gis", "grids", "jobs", "layers",
            "leads", "matching", "observation", "pages", "tasks")


def _runs_examples(path: pathlib.Path) -> bool:
    """Whether the module has an example that is run (not only ones marked +SKIP, which need a database)."""
    return any(line.lstrip().startswith(">>> ") and "doctest: +SKIP" not in line
               for line in path.read_text(encoding="utf-8").splitlines())


MODULES = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts)
                 for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                 if "migrations" not in path.parts and _runs_examples(path))


def test_the_modules_with_examples_are_found():
    assert {"evaluation.indicators", "evaluation.export", "gis.crs", "matching.identity"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
