"""The ``Examples`` block of every public function and class of the measurement side (``gaussify.metrics``,
``gaussify.plots``, ``gaussify.io``, ``gaussify.compare``) runs as a doctest, and every such entry point has one.

Each example runs in a fresh temporary working folder (the io examples write files by relative name), with
ELLIPSIS and NORMALIZE_WHITESPACE, in the names of an empty namespace (an example imports what it uses).
"""

import doctest
import importlib
import inspect

import pytest

MODULES = ("gaussify.metrics", "gaussify.plots", "gaussify.io", "gaussify.compare")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _entry_points() -> list[str]:
    """``module.name`` of every function and class in the ``__all__`` of MODULES (constants have no example)."""
    names = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        names += [f"{module_name}.{name}" for name in module.__all__
                  if inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name))]
    return names


ENTRY_POINTS = _entry_points()


def test_entry_points_found():
    assert len(ENTRY_POINTS) >= 50  # a broken discovery (an empty list) must not pass as "nothing to run"


@pytest.mark.parametrize("qualified", ENTRY_POINTS)
def test_docstring_example(qualified, tmp_path, monkeypatch):
    module_name, _, name = qualified.rpartition(".")
    obj = getattr(importlib.import_module(module_name), name)
    assert "\nExamples\n--------\n" in (inspect.getdoc(obj) or ""), f"{qualified} has no numpydoc Examples section"
    tests = [test for test in doctest.DocTestFinder(recurse=False).find(obj, qualified, globs={}) if test.examples]
    assert tests, f"the Examples section of {qualified} has no >>> example"
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    failures, attempted = runner.summarize(verbose=False)
    assert failures == 0, "".join(report)
