"""One call that says how Gaussian a sample is, and why: :func:`evaluate` → :class:`GaussianityReport`.

The report holds the KL divergence to the target with its exact split (negentropy = shape, placement =
mean and covariance), calibrated lower confidence bounds on the KL built from 1-D estimates (usable in any
dimension), the normality tests with their p-values, where the non-Gaussianity is (placement by direction, the most
non-Gaussian directions, the radial part), and renders as text, markdown, JSON, PNG plots and a
self-contained HTML page.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm.auto import tqdm

from ..io import write_text_atomic
from .._validation import (RandomState, as_sample, check_bool, check_int, check_n_jobs, check_random_state, check_real,
                           target_moments)
from ._common import format_number, format_pvalue
from .directions import WhereNonGaussian, where_non_gaussian
from .divergence import BOUND_LEVEL, KLEstimate, _continuous_lower_bounds, kl_divergence, sliced_wasserstein_to_gaussian
from .estimators.knn import RELIABLE_MAX_DIM
from .normality import _TESTS, MAX_EXACT, TEST_NAMES, TestResult, holm, normality_tests

__all__ = ["evaluate", "GaussianityReport", "FAST_TESTS", "MIN_ROWS"]

MIN_ROWS = 18
"""Fewest rows :func:`evaluate` takes: its kNN KL (k = 16 neighbours) needs more than k + 1 rows."""

FAST_TESTS = tuple(spec.name for spec in _TESTS if spec.fast)
"""The tests of ``tests="fast"``: those with no simulated null, or a cheap one (the radius test's)."""

WHERE_TOP = 5
"""Placement directions and pursued directions the report lists (and plots, up to 4 of each)."""

WHERE_FIT_ROWS = 10_000
"""Rows the report's pursuit fits its FastICA basis on at most (:func:`~gaussify.metrics.where_non_gaussian`), with
100 iterations; above d = 128 half as many rows and iterations, so that at 100,000 × 256 the three parts take a few
seconds."""

_PLOT_DIRECTIONS = 4
_TEST_LABELS = {spec.name: spec.label for spec in _TESTS}
_BOUND_LABELS = {
    "radial_kl": "KL of the radius ‖L⁻¹(z−μ)‖² to χ²_d",
    "marginal_kl": "placement + Σ 1-D negentropies (ICA basis)",
    "sliced_kl": "placement + max 1-D negentropy over slices",
    "gaussianization_kl": "placement + held-out Gaussianization (its shape part)",
}


@dataclass
class GaussianityReport:
    r"""How far a sample Z (n × d) is from a Gaussian target; built by :func:`evaluate`.

    ``kl`` is KL(P ‖ target) = ``negentropy`` + ``placement_kl`` (nats; +∞ for a sample that is not continuous),
    ``bounds`` are lower confidence bounds on it that hold jointly at 95% (:func:`~gaussify.metrics.kl_lower_bounds`;
    empty when the KL is infinite), ``kl_lower_bound`` is their maximum, ``tests`` maps a test name to its
    :class:`~gaussify.metrics.TestResult`, ``notes`` lists everything that changed the computation. It renders as
    text (``str(report)``), markdown (:meth:`to_markdown`), JSON (:meth:`to_dict`), PNG plots (:meth:`plot`) and a
    self-contained HTML page (:meth:`to_html`).

    Attributes
    ----------
    n : int
        Rows of the sample.
    d : int
        Its dimension.
    kl_estimate : KLEstimate
        The KL estimate with its split and measured interval (:func:`~gaussify.metrics.kl_divergence`).
    bounds : dict of str to float
        The calibrated lower bounds on the KL, in nats.
    sliced_wasserstein : float
        SW₂ to the target (:func:`~gaussify.metrics.sliced_wasserstein_to_gaussian`).
    tests : dict of str to TestResult
        The normality tests that were run.
    notes : list of str
        What changed the computation (subsamples, unreliable estimates, skipped bounds).
    sample : numpy.ndarray
        The sample itself (for the plots; not in :meth:`to_dict`).
    target : object
        The target as given.
    labels : numpy.ndarray or None
        Class labels that colour the pair plot.
    where : WhereNonGaussian or None
        Where the non-Gaussianity is (:func:`~gaussify.metrics.where_non_gaussian`): the placement split over
        eigen-directions of the covariance against the target, the most non-Gaussian directions with their held-out
        1-D negentropy, the radial part. None when the sample is not continuous.
    created : str
        ISO time stamp (UTC) of the report.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import evaluate
    >>> rng = np.random.default_rng(0)
    >>> report = evaluate(rng.uniform(-1.0, 1.0, (200, 2)), tests="fast")
    >>> report.kl == report.negentropy + report.placement_kl
    True
    >>> report.kl_lower_bound > 0.1, "henze_zirkler" in report.rejected(alpha=0.05)
    (True, True)
    >>> print(report.to_markdown())  # doctest: +ELLIPSIS
    **Gaussianity of 200 × 2 sample** — KL ... nats ...; normality rejected at level 0.05 ...
    <BLANKLINE>
    | divergence (nats) | value | meaning |
    ...
    """

    n: int
    d: int
    kl_estimate: KLEstimate
    bounds: dict[str, float]
    sliced_wasserstein: float
    tests: dict[str, TestResult]
    notes: list[str]
    sample: np.ndarray = field(repr=False)
    target: Any = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    where: WhereNonGaussian | None = field(default=None, repr=False)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def kl(self) -> float:
        return self.kl_estimate.value

    @property
    def negentropy(self) -> float:
        return self.kl_estimate.negentropy

    @property
    def placement_kl(self) -> float:
        return self.kl_estimate.placement

    @property
    def kl_lower_bound(self) -> float:
        """The largest bound (+∞ when the KL is infinite and the bounds were skipped)."""
        return max(self.bounds.values(), default=math.inf)

    @property
    def kl_too_low(self) -> bool:
        """Whether a lower bound exceeds the upper end of the KL's measured interval (or the estimate, when it has
        none): then the KL estimate is the number that is wrong."""
        interval = self.kl_estimate.interval
        return math.isfinite(self.kl) and self.kl_lower_bound > (interval[1] if interval else self.kl)

    def rejected(self, alpha: float = 0.05) -> list[str]:
        """Names of the tests that reject normality at level ``alpha`` after Holm's correction across tests."""
        check_real(alpha, "alpha", strict=True, high=1.0)
        names = list(self.tests)
        adjusted: np.ndarray | list[float] = (holm(np.array([self.tests[name].pvalue for name in names])) if names
                                              else [])
        return [name for name, p in zip(names, adjusted) if p < alpha]

    def verdict(self, alpha: float = 0.05) -> str:
        """One sentence: does any test reject, and how large is the KL (or its lower bound)."""
        rejected = self.rejected(alpha)
        interval = self.kl_estimate.interval
        if math.isinf(self.kl):
            kl = "not continuous (it has atoms): KL = ∞ to any Gaussian"
        elif self.kl_too_low:
            kl = (f"KL ≥ {format_number(self.kl_lower_bound, 3)} nats (the estimate {format_number(self.kl, 3)} "
                  "is too low here: a calibrated lower bound exceeds its interval)")
        elif self.kl_estimate.reliable:
            reliable_interval = cast(tuple[float, float], interval)  # a reliable estimate has an interval
            kl = f"KL {format_number(self.kl, 3)} nats (95% interval {_interval_text(reliable_interval, 3)})"
        elif interval:
            kl = (f"KL {_interval_text((max(interval[0], self.kl_lower_bound), interval[1]), 3)} nats (95%; the "
                  f"estimate {format_number(self.kl, 3)} is not reliable here)")
        else:
            kl = (f"KL ≥ {format_number(self.kl_lower_bound, 3)} nats (the estimate {format_number(self.kl, 3)} "
                  "has no measured interval)")
        if not self.tests:
            return f"{kl} (no tests run)."
        if not rejected:
            return f"{kl}; no test rejects normality at level {alpha} (Holm across {len(self.tests)} tests)."
        return (f"{kl}; normality rejected at level {alpha} (Holm across {len(self.tests)} tests) by "
                + ", ".join(_TEST_LABELS[name] for name in rejected) + ".")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no sample data)."""
        return {"n": self.n, "d": self.d, "created": self.created, "kl": self.kl_estimate.to_dict(),
                "kl_lower_bound": self.kl_lower_bound, "bounds": dict(self.bounds),
                "sliced_wasserstein": self.sliced_wasserstein,
                "tests": {name: result.to_dict() for name, result in self.tests.items()},
                "rejected_at_0.05": self.rejected(0.05), "verdict": self.verdict(), "notes": list(self.notes),
                "where": None if self.where is None else self.where.to_dict(WHERE_TOP)}

    def _divergence_rows(self) -> list[tuple[str, str, str]]:
        estimate = self.kl_estimate
        if math.isinf(self.kl):
            kl_text = "∞ (not continuous: the sample has atoms)"
        else:
            kl_text = format_number(self.kl) + (f" [{_interval_text(estimate.interval)}]" if estimate.interval else "")
            if estimate.ci:
                kl_text += f" (bootstrap {_interval_text(estimate.ci)})"
        if not estimate.reliable:
            kl_text += " (unreliable: wide interval)" if estimate.interval else " (no measured interval)"
        if self.kl_too_low:
            kl_text += " (too low here: a calibrated lower bound exceeds it)"
        rows = [("KL(P ‖ target)", kl_text, "negentropy + placement; [95% interval from the measured error]"),
                ("negentropy (shape)", "∞" if math.isinf(self.negentropy) else format_number(self.negentropy)
                 + (f" (unclipped {format_number(self.kl_estimate.raw_negentropy)})"
                    if self.kl_estimate.raw_negentropy < 0 else ""), "affine invariant; 0 iff Gaussian"),
                ("placement", format_number(self.placement_kl), "KL of the fitted N(mean, cov) to the target")]
        rows += [(f"lower bound: {_BOUND_LABELS[k]}", format_number(v),
                  f"≤ KL with {BOUND_LEVEL:.0%} confidence, all bounds jointly (kl_lower_bounds)")
                 for k, v in self.bounds.items()]
        rows.append(("sliced Wasserstein SW₂", format_number(self.sliced_wasserstein), "128 random slices"))
        return rows

    def _where_rows(self) -> list[tuple[str, str, str]]:
        """(what, nats, detail) rows of :attr:`where`, with a first row saying what the placement shares add up to."""
        where = cast(WhereNonGaussian, self.where)
        head = ("placement, plug-in", format_number(where.placement.total),
                f"the shares below add up to this (the placement above subtracts the bias "
                f"{format_number(where.placement.total - self.placement_kl, 3)} of a Gaussian sample of this size)")
        return [head, *where.rows(WHERE_TOP)]

    def _test_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [(_TEST_LABELS[name], f"{r.statistic:.4g}", format_pvalue(r.pvalue), r.pvalue_source, r.note)
                for name, r in self.tests.items()]

    def to_markdown(self) -> str:
        """The report as markdown tables."""
        lines = [f"**Gaussianity of {self.n} × {self.d} sample** — {self.verdict()}", "",
                 "| divergence (nats) | value | meaning |", "|---|---:|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self._divergence_rows()]
        if self.where is not None:
            lines += ["", "| where the non-Gaussianity is | nats | detail |", "|---|---:|---|"]
            lines += [f"| {a} | {b} | {c} |" for a, b, c in self._where_rows()]
        if self.tests:
            lines += ["", "| test | statistic | p-value | p-value from | note |", "|---|---:|---:|---|---|"]
            lines += [f"| {' | '.join(row)} |" for row in self._test_rows()]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        width = max(len(row[0]) for row in self._divergence_rows())
        lines = [f"Gaussianity of a {self.n} x {self.d} sample: {self.verdict()}"]
        lines += [f"  {a:<{width}}  {b}" for a, b, _ in self._divergence_rows()]
        if self.where is not None:
            rows = self._where_rows()
            ww = max(len(row[0]) for row in rows)
            lines.append("  where the non-Gaussianity is (nats):")
            lines += [f"    {a:<{ww}}  {b:>8}  {c}" for a, b, c in rows]
        if self.tests:
            tw = max(len(row[0]) for row in self._test_rows())
            lines.append(f"  {'test':<{tw}}  {'statistic':>10}  {'p-value':>9}  p-value from")
            lines += [f"  {a:<{tw}}  {b:>10}  {c:>9}  {m}" for a, b, c, m, _ in self._test_rows()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def figures(self) -> dict[str, Any]:
        """The diagnostic plots as matplotlib figures, keyed by a file-name stem."""
        from .. import plots

        figs = {"mahalanobis_qq": plots.mahalanobis_qq(self.sample, self.target)}
        if self.where is not None and self.where.pursuit is not None:
            figs["pursued_directions"] = plots.directions_plot(self.sample, self.target, kind="pursuit",
                                                               top=_PLOT_DIRECTIONS, where=self.where)
        if self.where is not None:
            figs["placement_directions"] = plots.directions_plot(self.sample, self.target, kind="placement",
                                                                 top=_PLOT_DIRECTIONS, where=self.where)
        if self.d <= RELIABLE_MAX_DIM:  # every coordinate fits on a page; above, the directions above say more
            figs |= {"pairs": plots.pair_plot(self.sample, self.target, labels=self.labels,
                                              kind="hexbin" if self.n > 20_000 else "scatter"),
                     "marginals": plots.marginals_plot(self.sample, self.target),
                     "qq": plots.qq_plot(self.sample, self.target)}
            if self.d > 1:
                figs["projections"] = plots.projection_qq(self.sample, self.target)
        return figs

    def plot(self, directory: str | Path) -> list[Path]:
        """Save every diagnostic plot as ``<directory>/<name>.png``; returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fig in self.figures().items():
            paths.append(directory / f"{name}.png")
            fig.savefig(paths[-1], dpi=120)
        return paths

    def to_html(self, path: str | Path | None = None, *, title: str = "gaussify report",
                extra_sections: Sequence[tuple[str, str]] = ()) -> str:
        """Self-contained HTML page (plots embedded as PNG data URIs); written to ``path`` if given.

        ``extra_sections`` are ``(heading, html_body)`` pairs placed before the plots (e.g. a comparison table).
        """
        from ..plots import figure_to_base64_png

        body = [f"<h1>{html.escape(title)}</h1>",
                f"<p class='verdict'>{html.escape(self.verdict())}</p>",
                f"<p class='meta'>{self.n} points × {self.d} dimensions · created {self.created}</p>",
                "<h2>Divergences to the target</h2>",
                _html_table(("divergence (nats)", "value", "meaning"), self._divergence_rows())]
        if self.where is not None:
            body += ["<h2>Where the non-Gaussianity is</h2>",
                     _html_table(("where", "nats", "detail"), self._where_rows())]
        if self.tests:
            body += ["<h2>Normality tests</h2>",
                     _html_table(("test", "statistic", "p-value", "p-value from", "note"), self._test_rows())]
        if self.notes:
            body += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(note)}</li>" for note in self.notes] + ["</ul>"]
        for heading, section in extra_sections:
            body += [f"<h2>{html.escape(heading)}</h2>", section]
        body.append("<h2>Plots</h2>")
        body += [f"<figure><img alt='{name}' src='data:image/png;base64,{figure_to_base64_png(fig)}'></figure>"
                 for name, fig in self.figures().items()]
        page = _HTML_TEMPLATE.format(title=html.escape(title), body="\n".join(body))
        if path is not None:
            write_text_atomic(path, page)
        return page


def _interval_text(interval: tuple[float, float], digits: int = 4) -> str:
    return f"{format_number(interval[0], digits)} – {format_number(interval[1], digits)}"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.4; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
.verdict {{ font-size: 1.15em; font-weight: 600; }}
.meta {{ color: #666; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""


def _resolve_tests(tests: str | Sequence[str] | None) -> tuple[str, ...]:
    if tests is None or tests == "none":
        return ()
    if tests == "all":
        return TEST_NAMES
    if tests == "fast":
        return FAST_TESTS
    names = (tests,) if isinstance(tests, str) else tuple(tests)
    unknown = [name for name in names if name not in TEST_NAMES]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; choose 'all', 'fast', 'none' or names from {list(TEST_NAMES)}")
    return names


def evaluate(Z: Any, target: Any = None, *, tests: str | Sequence[str] | None = "all", labels: Any = None,
             ci: float | None = None, max_exact: int = MAX_EXACT, monte_carlo: bool = False,
             random_state: RandomState = 0, n_jobs: int = 1, verbose: bool = False) -> GaussianityReport:
    r"""How Gaussian is ``Z`` (n × d) relative to ``target``?

    Computes :func:`~gaussify.metrics.kl_divergence` (with its measured 95% interval, and a bootstrap interval of
    the sampling noise when ``ci`` is given), the lower
    confidence bounds :func:`~gaussify.metrics.kl_lower_bounds` (radial, placement + ICA marginals, placement + best
    slice; jointly at 95%), the sliced Wasserstein distance, and the normality tests ``tests``. O(n²) tests run on an
    announced random subsample of ``max_exact`` rows beyond that size; above d = 8 the KL's shape part runs on a random
    subsample of :data:`~gaussify.metrics.HIGH_DIM_ROWS` rows, as :func:`~gaussify.metrics.kl_divergence` does.
    A sample that is not continuous (:func:`~gaussify.metrics.atoms`) reads KL = ∞ and skips the bounds. The
    report also says where the non-Gaussianity is (:func:`~gaussify.metrics.where_non_gaussian`): the placement
    split over eigen-directions of the covariance against the target, the most non-Gaussian directions (FastICA
    fitted on at most :data:`WHERE_FIT_ROWS` rows of one half, 1-D negentropy measured on the other half) and the
    radial part; its plots show the sample along those directions. Memory is linear in n.

    Parameters
    ----------
    Z : array-like of shape (n, d)
        The sample, one row per point (at least :data:`MIN_ROWS`).
    target : None | int | Gaussian | tuple, optional
        The Gaussian target: None for N(0, I), an int d for N(0, I_d), a :class:`gaussify.Gaussian` or a
        ``(mean, cov)`` pair.
    tests : str or sequence of str, default "all"
        ``"all"``, ``"fast"`` (:data:`FAST_TESTS`, no simulated nulls), ``"none"`` or a list of names from
        :data:`~gaussify.metrics.TEST_NAMES`.
    labels : array-like of shape (n,), optional
        Class labels that colour the report's pair plot.
    ci : float, optional
        Level of the bootstrap interval of the KL (sampling noise only).
    max_exact : int, default MAX_EXACT
        Rows the O(n²) tests use at most.
    monte_carlo : bool, default False
        Monte Carlo p-values for the tests that also have an asymptotic one.
    random_state : None | int | Generator, default 0
        Seeds every stage (each seeds itself from it).
    n_jobs : int, default 1
        Threads of the kNN searches (-1 for all cores).
    verbose : bool, default False
        Show a progress bar over the stages.

    Returns
    -------
    GaussianityReport
        Everything measured, with its verdict and renderings.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussify.metrics import evaluate
    >>> rng = np.random.default_rng(0)
    >>> report = evaluate(rng.standard_normal((200, 2)), tests="fast")
    >>> report.kl_estimate.reliable, report.rejected()
    (True, [])
    >>> report.verdict()  # doctest: +ELLIPSIS
    'KL ... nats (95% interval ...); no test rejects normality at level 0.05 (Holm across 6 tests).'
    """
    X = as_sample(Z, min_rows=MIN_ROWS)
    n, d = X.shape
    target_moments(target, d)  # validate early, before any long computation
    names = _resolve_tests(tests)
    if ci is not None:
        check_real(ci, "ci", strict=True, high=1.0)
    check_int(max_exact, "max_exact", minimum=3)
    check_random_state(random_state)  # each stage seeds itself from the same random_state
    check_n_jobs(n_jobs)
    check_bool(monte_carlo, "monte_carlo")
    check_bool(verbose, "verbose")
    label_array = None
    if labels is not None:
        label_array = np.asarray(labels).reshape(-1)
        if label_array.shape[0] != n:
            raise ValueError(f"labels has {label_array.shape[0]} entries but Z has {n} rows")
    notes: list[str] = []
    stages = tqdm(total=4, desc="evaluate", disable=not verbose, unit="step")
    stages.set_postfix_str("KL")
    kl = kl_divergence(X, target, ci=ci, random_state=random_state, n_jobs=n_jobs)
    notes.append(kl.note)
    stages.update()
    stages.set_postfix_str("lower bounds")
    if math.isinf(kl.value):
        bounds = {}
        notes.append("lower bounds skipped: the KL is infinite.")
    else:
        bounds = _continuous_lower_bounds(X, target, BOUND_LEVEL, check_random_state(random_state), shape=kl)
    sw = sliced_wasserstein_to_gaussian(X, target, random_state=random_state)
    where = None
    if math.isinf(kl.value):
        notes.append("where the non-Gaussianity is: skipped, the sample is not continuous.")
    else:
        fit_rows, iterations = (WHERE_FIT_ROWS, 100) if d <= 128 else (WHERE_FIT_ROWS // 2, 50)
        where = where_non_gaussian(X, target, top=WHERE_TOP, max_fit=fit_rows, max_iter=iterations,
                                   random_state=random_state)
        notes += list(where.notes)
    stages.update()
    stages.set_postfix_str("tests")
    results = (normality_tests(X, target=target, tests=names, max_exact=max_exact, monte_carlo=monte_carlo,
                               random_state=random_state) if names else {})
    stages.update(2)
    stages.close()
    return GaussianityReport(n=n, d=d, kl_estimate=kl, bounds=bounds, sliced_wasserstein=sw, tests=results,
                             notes=notes, sample=X, target=target, labels=label_array, where=where)
