"""The ``Examples`` block of every public function and class of gaussify runs as a doctest, and every such entry
point has one.

The public modules are derived, not listed: ``gaussify`` itself and each module or subpackage directly under it
whose name has no leading underscore, through its ``__all__`` (a subpackage's ``__all__`` re-exports what its own
modules define). An object exported under several names (``gaussify.evaluate`` is ``gaussify.metrics.evaluate``)
is run once, under its first name. A module whose optional dependency is missing (``gaussify.lightning`` without
Lightning) is skipped.

Each example runs in a fresh temporary working folder (the io examples write files by relative name), with
ELLIPSIS and NORMALIZE_WHITESPACE, in the names of an empty namespace (an example imports what it uses).
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import gaussify

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

def _public_modules() -> list[str]:
    """``gaussify`` and each module or subpackage directly under it without a leading underscore, by name."""
    return ["gaussify", *sorted(f"gaussify.{info.name}" for info in pkgutil.iter_modules(gaussify.__path__)
                                if not info.name.startswith("_"))]


def _documented(obj: object) -> bool:
    return inspect.isfunction(obj) or inspect.isclass(obj)  # constants have no example


def _entry_points() -> tuple[list[str], list[str]]:
    """``module.name`` of every function and class in the ``__all__`` of the public modules, each object once;
    and the public modules that could not be imported (an optional dependency missing)."""
    names, seen, missing = [], set(), []
    for module_name in _public_modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if _documented(obj) and id(obj) not in seen:
                seen.add(id(obj))
                names.append(f"{module_name}.{name}")
    return names, missing


ENTRY_POINTS, UNIMPORTABLE = _entry_points()


def test_entry_points_found():
    assert len(ENTRY_POINTS) >= 100  # a broken discovery (an empty list) must not pass as "nothing to run"
    assert "gaussify.GaussianEmbedder" in ENTRY_POINTS and "gaussify.metrics.rankme" in ENTRY_POINTS


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


def test_every_public_module_imported():
    if UNIMPORTABLE:  # an optional dependency missing here: their examples are not run, and the skip says so
        pytest.skip(f"not importable here, examples not run: {', '.join(UNIMPORTABLE)}")
