"""evaluate() and GaussianityReport: the split adds up, placement follows the target, tests reject
what is not Gaussian, every rendering (text, markdown, JSON, PNG, HTML) is complete, bad input fails."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gaussify.metrics import FAST_TESTS, TEST_NAMES, evaluate
from gaussify.metrics._common import format_number
from gaussify.metrics.report import holm


@pytest.fixture(scope="module")
def gaussian_report():
    Z = np.random.default_rng(0).standard_normal((800, 3))
    return evaluate(Z, tests="fast", labels=np.arange(800) % 3)


@pytest.fixture(scope="module")
def uniform_report():
    Z = (np.random.default_rng(1).random((800, 2)) - 0.5) * math.sqrt(12)
    return evaluate(Z, tests="fast")


def test_kl_is_negentropy_plus_placement(gaussian_report, uniform_report):
    for report in (gaussian_report, uniform_report):
        assert report.kl == pytest.approx(report.negentropy + report.placement_kl, abs=1e-12)


def test_gaussian_sample_passes_and_uniform_square_fails(gaussian_report, uniform_report):
    assert gaussian_report.kl < 0.05 and gaussian_report.rejected() == []
    assert set(gaussian_report.tests) == set(FAST_TESTS)
    # whitened uniform square: KL = log(2 pi e) - 2 log(2 sqrt 3) = 0.353 nats
    assert abs(uniform_report.kl - 0.353) < 0.08
    assert uniform_report.rejected()
    assert "rejected" in uniform_report.verdict()
    # every bound is a lower bound (up to the estimators' noise)
    assert 0.0 <= uniform_report.kl_lower_bound <= uniform_report.kl + 0.05


def test_placement_follows_the_target():
    rng = np.random.default_rng(2)
    mu = np.array([1.0, -2.0])
    Z = rng.standard_normal((2000, 2)) + mu
    assert evaluate(Z, (mu, np.eye(2)), tests="none").placement_kl < 0.01
    # KL(N(mu, I) || N(0, I)) = |mu|^2 / 2 = 2.5
    assert evaluate(Z, tests="none").placement_kl == pytest.approx(2.5, abs=0.15)


def test_high_dimension_reports_a_lower_bound():
    Z = np.random.default_rng(3).standard_normal((500, 12))
    report = evaluate(Z, tests="none")
    assert not report.kl_estimate.reliable
    low, high = report.kl_estimate.interval
    assert f"KL {format_number(low, 3)} – {format_number(high, 3)} nats" in report.verdict()
    assert "not reliable" in report.verdict() and "unreliable" in " ".join(report.notes)


def test_subsampling_is_announced():
    Z = np.random.default_rng(4).standard_normal((300, 2))
    report = evaluate(Z, tests=["henze_zirkler"], max_exact=100)
    assert report.tests["henze_zirkler"].n == 100
    assert "subsample of 100 of 300 rows" in report.tests["henze_zirkler"].note


def test_renderings(gaussian_report, tmp_path):
    data = gaussian_report.to_dict()
    assert json.loads(json.dumps(data))["kl"]["value"] == pytest.approx(gaussian_report.kl)
    assert set(data["tests"]) == set(FAST_TESTS)
    text, markdown = str(gaussian_report), gaussian_report.to_markdown()
    for rendering in (text, markdown):
        assert "Henze–Zirkler" in rendering and "negentropy" in rendering
    assert markdown.count("\n|") >= 3 + len(FAST_TESTS)
    paths = gaussian_report.plot(tmp_path / "plots")
    assert {p.name for p in paths} >= {"mahalanobis_qq.png", "pairs.png", "marginals.png", "qq.png"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    page = gaussian_report.to_html(tmp_path / "report.html", extra_sections=[("Extra <b>", "<p>body</p>")])
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == page
    assert page.count("data:image/png;base64,") == len(paths) and "Extra &lt;b&gt;" in page
    assert "<td>Henze–Zirkler</td>" in page


def test_holm_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4*0.01, max(., 3*0.03), max(., 2*0.04), max(., 0.5)
    np.testing.assert_allclose(holm(p), [0.04, 0.09, 0.09, 0.5])


def test_all_tests_run_by_default():
    report = evaluate(np.random.default_rng(5).standard_normal((60, 2)))
    assert set(report.tests) == set(TEST_NAMES)


@pytest.mark.parametrize("kwargs, match", [
    ({"Z": np.full((50, 2), np.nan)}, "NaN"),
    ({"Z": np.zeros((5, 2))}, "rows"),
    ({"tests": ["shapiro_wilk"]}, "unknown test"),
    ({"labels": np.arange(3)}, "labels has 3"),
    ({"target": 3}, "dimension"),
])
def test_bad_input(kwargs, match):
    args = {"Z": np.random.default_rng(6).standard_normal((50, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate(args.pop("Z"), **args)


def test_bad_alpha(gaussian_report):
    with pytest.raises(ValueError, match="alpha"):
        gaussian_report.rejected(1.5)


def test_not_continuous_sample_reads_infinite_kl():
    Z = np.random.default_rng(7).integers(-3, 4, (2000, 2)).astype(float)
    report = evaluate(Z, tests="none")
    assert report.kl == math.inf and report.bounds == {} and report.kl_lower_bound == math.inf
    text = str(report)
    assert "not continuous" in report.verdict() and "KL = ∞" in report.verdict()
    assert "lower bounds skipped" in text and "repeat another row" in text
    assert json.loads(json.dumps(report.to_dict()))["kl"]["value"] == math.inf


def test_a_bound_above_the_knn_estimate_says_which_is_wrong(uniform_report):
    from dataclasses import replace

    assert not uniform_report.kl_too_low
    contradicted = replace(uniform_report, bounds={**uniform_report.bounds, "radial_kl": uniform_report.kl + 0.5})
    assert contradicted.kl_too_low
    for rendering in (str(contradicted), contradicted.to_markdown(), contradicted.verdict()):
        assert "too low here" in rendering
    assert "KL ≥" in contradicted.verdict()
    assert "accurate in any d" not in " ".join(map(str, contradicted._divergence_rows()))


def test_the_report_says_where_the_non_gaussianity_is(tmp_path):
    """A rotated bimodal and a rotated collapsed direction among 16: found by name in text, markdown, JSON, HTML,
    and the plots above d = 8 are the directions that matter."""
    rng = np.random.default_rng(8)
    n, d = 6000, 16
    G = rng.standard_normal((n, d))
    G[:, 0] = rng.choice([-0.9, 0.9], n) + math.sqrt(0.19) * rng.standard_normal(n)
    G[:, 1] *= 0.1
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    report = evaluate(G @ R.T, tests="none")
    assert report.where is not None
    assert abs(report.where.placement.directions[0] @ R[:, 1]) > 0.99
    assert abs(report.where.pursuit.directions[0] @ R[:, 0]) > 0.95
    text = str(report)
    assert "where the non-Gaussianity is" in text and "placement direction 1: collapsed" in text
    assert "pursued direction 1" in text and "radial part" in text
    assert "| placement direction 1: collapsed |" in report.to_markdown()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["where"]["placement"]["directions"][0]["label"] == "collapsed"
    assert data["where"]["pursuit"]["directions"][0]["above_noise"] is True
    page = report.to_html(tmp_path / "r.html")
    assert "Where the non-Gaussianity is" in page
    # above d = 8 the plots are the directions that matter, not the first coordinates
    figs = report.figures()
    assert {"pursued_directions", "placement_directions", "mahalanobis_qq"} == set(figs)
    assert figs["placement_directions"].axes[0].get_title().startswith("1: collapsed")


def test_evaluate_and_kl_divergence_agree_on_a_big_high_dimensional_sample():
    # one subsampling rule, in kl_divergence (max_rows="auto"): evaluate reports the very estimate it gives
    from gaussify.metrics import HIGH_DIM_ROWS, kl_divergence

    Z = np.random.default_rng(8).standard_normal((HIGH_DIM_ROWS + 2000, 10))
    est = kl_divergence(Z)
    assert f"subsample of {HIGH_DIM_ROWS} of {HIGH_DIM_ROWS + 2000} rows" in est.note
    assert evaluate(Z, tests="none").kl_estimate == est
