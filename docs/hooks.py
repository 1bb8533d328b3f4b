"""MkDocs hooks: pages made from what the repository already holds, so that nothing is copied by hand.

- ``reference/index.md``: every name of ``gaussify.__all__`` with the first line of its docstring, linked to
  its entry in the reference (strict mode then fails when a new export is documented on no page).
- ``reference/cli.md``: the ``--help`` text of every ``gaussify`` command, run at build time.
- ``reference/regularizers.md``: the base class, then one section per module of ``gaussify.regularizers.REGISTRY``
  (so a new regularizer is documented without a docs edit).
- ``benchmarks/*.md`` (and their figures): the committed results in ``benchmarks/results/``.

It is also the griffe extension ``SphinxRoles`` (``docs/hooks.py:SphinxRoles`` in mkdocs.yml): the Sphinx
roles of gaussify's docstrings become mkdocstrings cross-references. ``:func:`name```,
``:class:`~gaussify.Gaussian```, ``:meth:`save``` … are resolved the way Python would resolve the name where
the docstring stands (the object, then its parents), or as a full path, with the lazy top-level names of
``gaussify`` (``gaussify.Gaussian``) mapped to where they are defined. A resolved public object becomes
``[`title`][canonical.path]``, which autorefs links (and which fails a strict build when no page documents
it); a private one, or another package's, becomes plain code; a name that resolves to nothing is a warning,
so a strict build fails on a stale reference. ``:math:`x``` and ``.. math::`` blocks become arithmatex
``$x$`` and ``$$ … $$`` (MathJax typesets them in the browser).

``javascripts/mathjax/``: MathJax and its fonts, copied from an installed package, so that a built site shows its
formulas without the network (the theme's web fonts are off too: ``theme.font: false``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import textwrap
from pathlib import Path

import griffe
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc):`(~?)\.?([\w.]+)`")
MATH = re.compile(r":math:`([^`]+)`")
MATH_BLOCK = re.compile(r"^(?P<indent> *)\.\. math::\n(?P<body>(?:(?P=indent) +\S.*\n|[ \t]*\n)+)", re.MULTILINE)


def _math_block(match: re.Match) -> str:
    indent, body = match["indent"], textwrap.dedent(match["body"]).strip("\n")
    return f"{indent}$$\n{textwrap.indent(body, indent)}\n{indent}$$\n\n"


def _command_paths(command, path=()):
    """Every command path of a click group, the group itself first, in the order the app declares them."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def api_overview() -> str:
    import inspect

    import gaussify

    rows = ["| name | what it is |", "|---|---|"]
    for name in gaussify.__all__:
        if name == "__version__":
            continue
        obj = getattr(gaussify, name)
        summary = ROLE.sub(lambda m: f"`{m.group(2)}`", (inspect.getdoc(obj) or "").split("\n\n")[0])
        summary = summary.replace("\n", " ").replace("|", "\\|")
        rows.append(f"| [`gaussify.{name}`][{obj.__module__}.{obj.__qualname__}] | {summary} |")
    return "\n".join(["# API reference\n",
                      "`import gaussify` gives these names (loaded lazily: `gaussify.metrics` and `gaussify.plots` "
                      "work without torch). The pages of this section document each module in full.\n", *rows, ""])


def cli_reference() -> str:
    import typer.main
    from typer.testing import CliRunner

    from gaussify.cli import app

    runner = CliRunner()
    sections = ["# Command line\n",
                "The `--help` text of every command, as `gaussify` prints it (generated when the site is built).\n"]
    for path in _command_paths(typer.main.get_command(app)):
        result = runner.invoke(app, [*path, "--help"], prog_name="gaussify", env={"COLUMNS": "100"})
        if result.exit_code != 0:
            raise RuntimeError(f"gaussify {' '.join(path)} --help exited with {result.exit_code}: {result.output}")
        sections.append(f"## `{' '.join(('gaussify', *path))}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "\n".join(sections)


def regularizers_reference() -> str:
    from gaussify.regularizers import REGISTRY

    modules = dict.fromkeys(["base", *(path.partition(":")[0] for path in REGISTRY.paths.values()), "combination"])
    members = "::: gaussify.regularizers\n    options:\n      members: [REGISTRY, Registry, make_regularizer]"
    return "\n\n".join(["# Regularizers", members, *(f"::: gaussify.regularizers.{m}" for m in modules)]) + "\n"


def mathjax_files() -> list[tuple[str, Path]]:
    """(path under ``javascripts/mathjax/``, file) of the MathJax 3 that the site ships, from the package
    ``django-static-mathjax`` of the dev extra: the component ``tex-chtml.js`` (TeX in, CHTML out; not
    ``tex-mml-chtml.js``, whose MathML input typesets a formula's assistive MathML a second time when a page is
    re-typeset), the CHTML output with its web fonts, what it loads on demand (TeX extensions, the menu, the
    accessibility and speech components) and MathJax's licence. The site loads nothing from the network
    (tests/test_docs.py opens it offline in a headless browser)."""
    spec = importlib.util.find_spec("mathjax")
    root = Path(spec.origin).parent / "static" / "mathjax" if spec and spec.origin else None
    if root is None or not (root / "es5" / "tex-chtml.js").is_file():
        raise RuntimeError("MathJax is not installed: the site ships its own copy, from the package "
                           "django-static-mathjax of the dev extra (pip install -e '.[dev]')")
    es5 = root / "es5"
    shipped = [es5 / "tex-chtml.js", root / "LICENSE",
               *(path for folder in ("input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre")
                 for path in sorted((es5 / folder).rglob("*") if (es5 / folder).is_dir() else [es5 / folder])
                 if path.is_file())]
    return [(path.relative_to(es5 if path.is_relative_to(es5) else root).as_posix(), path) for path in shipped]


def on_files(files: Files, config) -> Files:
    for name, path in mathjax_files():
        files.append(File.generated(config, f"javascripts/mathjax/{name}", abs_src_path=str(path)))
    files.append(File.generated(config, "reference/index.md", content=api_overview()))
    files.append(File.generated(config, "reference/regularizers.md", content=regularizers_reference()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    for source in sorted(RESULTS.glob("*.md")) + sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{source.name}", abs_src_path=str(source)))
    return files


def _runtime_path(path: str) -> str | None:
    """Where the object ``path`` names is defined, found by importing it: the names a package loads lazily
    (PEP 562 ``__getattr__``, as ``gaussify.regularizers`` does) are invisible to griffe's static analysis."""
    module, _, name = path.rpartition(".")
    with contextlib.suppress(ImportError, AttributeError, ValueError):
        obj = getattr(importlib.import_module(module), name.partition(".")[0])
        return f"{obj.__module__}.{obj.__qualname__}"
    return None


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        import gaussify

        self.pkg, self.exports = pkg, dict(gaussify._EXPORTS) if pkg.name == "gaussify" else {}
        self._rewrite(pkg)

    def _rewrite(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(lambda m: self._link(obj, m.group(2), bool(m.group(1))), obj.docstring.value)
            obj.docstring.value = MATH_BLOCK.sub(_math_block, MATH.sub(r"$\1$", text + "\n")).rstrip("\n")
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member)

    def _link(self, scope: griffe.Object, name: str, short: bool) -> str:
        title = f"`{name.rsplit('.', 1)[-1] if short else name}`"
        path = self._resolve(scope, name)
        if path is not None and path.partition(".")[0] != self.pkg.name:
            return title  # another package's object, e.g. matplotlib.figure.Figure
        target = None
        for candidate in filter(None, (path, _runtime_path(path or f"{scope.module.path}.{name}"))):
            with contextlib.suppress(KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                found = self.pkg.modules_collection[candidate]
                target = found.final_target if found.is_alias else found
                break
        if target is None:
            griffe.logger.warning(f"{scope.relative_filepath}:{scope.docstring.lineno}: cannot resolve the reference "
                                  f"{name!r} in the docstring of {scope.path}")
            return title
        if any(part.startswith("_") and not part.startswith("__") for part in target.path.split(".")):
            return title
        return f"[{title}][{target.path}]"

    def _resolve(self, scope: griffe.Object, name: str) -> str | None:
        """The full path ``name`` stands for where ``scope`` is defined (a dotted name is taken as a full path
        when its first part is a package: ``gaussify.…``, ``matplotlib.…``), or None."""
        first, _, rest = name.partition(".")
        if first == self.pkg.name:
            head, _, tail = rest.partition(".")
            if head in self.exports:
                rest = ".".join(filter(None, (self.exports[head], head, tail)))
            return ".".join(filter(None, (first, rest)))
        if rest and importlib.util.find_spec(first) is not None:
            return name
        try:
            return ".".join(filter(None, (scope.resolve(first), rest)))
        except griffe.NameResolutionError:
            return None
