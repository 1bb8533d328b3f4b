"""The accuracy benchmark's laws have the densities they claim, their samples follow them, the plain kNN estimate
is calibrated, and --quick writes a sane report."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import gammaln, logsumexp

from gaussify.bench.accuracy import (FAMILIES, KS, NoisySphere, StudentT, error_envelopes, estimator_names, main,
                                     make_family, plain_knn_kl, true_kl)
from gaussify.metrics import divergence


def _grid(family, half_width, step):
    axis = np.arange(-half_width, half_width + step / 2, step)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return axis, family.log_prob(np.column_stack([a.ravel(), b.ravel()])).reshape(a.shape)


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"cube"}))  # a grid cannot integrate the cube's edges
def test_density_integrates_to_one_and_matches_its_samples_in_2d(name):
    family = make_family(name, 2)
    heavy = name.startswith("student")
    # wide enough for the t tails and the gamma coordinates' right tails; fine enough for the tight clusters
    axis, log_p = _grid(family, 40.0 if heavy else 12.0 if name == "skewed" else 6.0,
                        0.05 if heavy else 0.01 if name == "mixture_tight" else 0.02)
    p = np.exp(log_p)
    mass = integrate.trapezoid(integrate.trapezoid(p, axis), axis)
    # the t3 tail beyond the square holds P(|x|_∞ > 40) < 1e-4
    assert mass == pytest.approx(1.0, abs=2e-4 if heavy else 1e-5)
    # E log p from the grid and from the sampler agree: the samples follow the density
    expected = integrate.trapezoid(integrate.trapezoid(p * np.where(p > 0, log_p, 0.0), axis), axis)
    draws = family.log_prob(family.sample(100_000, np.random.default_rng(1)))
    assert draws.mean() == pytest.approx(expected, abs=4 * draws.std() / math.sqrt(len(draws)) + 2e-3)


@pytest.mark.parametrize("name", ["sphere", "skewed"])
def test_density_integrates_to_one_in_1d(name):
    family = make_family(name, 1)
    grid = np.arange(-8.0, 40.0, 0.001)  # the standardised Gamma(1.5) reaches far to the right
    assert integrate.trapezoid(np.exp(family.log_prob(grid[:, None])), grid) == pytest.approx(1.0, abs=1e-5)


def test_mixture_matches_scipy():
    family = make_family("mixture_unequal", 3)
    X = family.sample(500, np.random.default_rng(0))
    s = family.scale
    expected = logsumexp([math.log(w) + stats.multivariate_normal(m / s, (sd / s) ** 2 * np.eye(3)).logpdf(X)
                          for w, m, sd in zip(family.weights, family.means, family.sds)], axis=0)
    np.testing.assert_allclose(family.log_prob(X), expected, rtol=1e-10)
    big = family.sample(200_000, np.random.default_rng(1))  # the scale makes tr Cov = d; the mean is kept
    assert np.trace(np.cov(big, rowvar=False)) == pytest.approx(3.0, rel=0.02)
    assert family.second_moment == pytest.approx(np.mean(np.sum(big**2, axis=1)), rel=0.02)


@pytest.mark.parametrize("d, df", [(1, 5.0), (4, 3.0), (16, 5.0)])
def test_student_t_matches_scipy(d, df):
    family = StudentT(d, df)
    X = family.sample(300, np.random.default_rng(0))
    shape = np.eye(d) / family.scale**2  # the law of x / s
    np.testing.assert_allclose(family.log_prob(X), stats.multivariate_t(np.zeros(d), shape, df=df).logpdf(X),
                               rtol=1e-10)
    assert family.scale == pytest.approx(math.sqrt(df / (df - 2)))


@pytest.mark.parametrize("d", [2, 3, 5, 16])
def test_sphere_density_is_the_average_over_the_sphere(d):
    # p(x) = (2πσ²)^{-d/2} exp(−(r² + R²)/(2σ²)) E[exp(κ t)], t = cos(angle of u to x), density ∝ (1 − t²)^{(d−3)/2}
    family = NoisySphere(d, radius=1.0, noise=0.2)
    R, s2 = family.radius, family.noise**2
    log_norm_t = gammaln(d / 2) - gammaln((d - 1) / 2) - 0.5 * math.log(math.pi)
    rng = np.random.default_rng(0)
    for r in (0.0, 0.5, 1.0, 1.6):
        u = rng.standard_normal(d)
        x = r * u / np.linalg.norm(u)
        kappa = R * r / s2
        # E[exp(κ(t − 1))] over the angle, so that large κ does not overflow
        mean_exp = integrate.quad(lambda t: np.exp(log_norm_t + kappa * (t - 1.0)) * (1 - t * t) ** ((d - 3) / 2),
                                  -1, 1, limit=200, epsabs=0, epsrel=1e-11)[0]
        expected = (-0.5 * d * math.log(2 * math.pi * s2) - (r * r + R * R) / (2 * s2) + kappa + math.log(mean_exp))
        assert family._log_prob(x[None])[0] == pytest.approx(expected, abs=1e-8)


def test_skewed_true_kl_is_the_sum_of_the_gamma_negentropies():
    family = make_family("skewed", 4)
    # independent standardised coordinates: KL = Σ_j J_j, J_j = ½ log 2πe − (H(Gamma(a_j)) − ½ log a_j)
    exact = sum(0.5 * math.log(2 * math.pi * math.e) - (stats.gamma(a).entropy() - 0.5 * math.log(a))
                for a in family.shapes)
    value, se = true_kl(family, 200_000)
    assert value == pytest.approx(exact, abs=4 * se)


def test_cube_true_kl_is_its_closed_form():
    # uniform on [−√3, √3]^d after scaling (mean 0, covariance I): KL = d (½ log 2πe − log 2√3); every sample
    # lies inside, where log p is exactly −d log(2√3)
    family = make_family("cube", 4)
    exact = 4 * (0.5 * math.log(2 * math.pi * math.e) - math.log(2 * math.sqrt(3)))
    X = family.sample(1000, np.random.default_rng(0))
    assert np.allclose(family.log_prob(X), -4 * math.log(2 * math.sqrt(3)))
    assert np.isneginf(family.log_prob(np.full((1, 4), 1.8))).all()
    value, se = true_kl(family, 100_000)
    assert value == pytest.approx(exact, abs=4 * se + 1e-9)


def test_circle_kl_is_the_same_in_every_dimension():
    low, se_low = true_kl(make_family("circle", 2), 100_000)
    high, se_high = true_kl(make_family("circle", 8), 100_000)
    assert low == pytest.approx(high, abs=4 * math.hypot(se_low, se_high))


def test_plain_knn_kl_is_calibrated():
    rng = np.random.default_rng(0)
    gaussian = plain_knn_kl(rng.standard_normal((2000, 3)))  # J clipped at 0; sd of J_1 about 0.03, J_4 0.01
    assert set(gaussian) == set(KS) and all(0 <= v < (0.1 if k <= 2 else 0.04) for k, v in gaussian.items())
    # uniform square of unit variance: KL = 2 (½ log 2πe − log 2√3)
    square = plain_knn_kl(rng.uniform(-math.sqrt(3), math.sqrt(3), (5000, 2)))
    exact = 2 * (0.5 * math.log(2 * math.pi * math.e) - math.log(2 * math.sqrt(3)))
    assert square[4] == pytest.approx(exact, abs=0.04)


def test_bad_families():
    with pytest.raises(ValueError, match="unknown family"):
        make_family("hypercube", 2)
    with pytest.raises(ValueError, match="flow_digits is built at d"):
        make_family("flow_digits", 4)
    with pytest.raises(ValueError, match="df must be > 2"):
        StudentT(2, 2.0)
    with pytest.raises(ValueError, match="d must be an integer >= 2"):
        make_family("circle", 1)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        make_family("sphere", 3).log_prob(np.zeros((4, 2)))


def test_quick_run_writes_sane_files(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["--quick", "--out", str(out), "--cache", str(cache), "--no-progress"]) == 0
    report = (out / "accuracy.md").read_text()
    assert "Versions:" in report and "## Summary per estimator" in report and "## Default estimator" in report
    assert (out / "accuracy.png").stat().st_size > 1000 and (cache / "true_kl.json").exists()
    data = json.loads((out / "accuracy.json").read_text())
    cells = data["cells"]
    # d = 2, 4 at n = 500: every estimator but method='knn', the default's own method there
    assert len(cells) == len(FAMILIES) * 2 * (len(estimator_names()) - 1)
    for family in data["families"]:
        # KL > 0 for every law but the target itself, where the Monte Carlo terms are 0 up to rounding
        assert (family["true_kl"] > 0 if family["family"] != "gaussian" else abs(family["true_kl"]) < 1e-12)
        assert family["true_kl_se"] < 0.02
    for cell in cells:
        assert cell["n"] == 500 and cell["reps"] == (1 if cell["estimator"] == "flow cross-fit" else 2)
        assert all(np.isfinite(cell["estimates"]))
        assert cell["rmse"] >= abs(cell["bias"]) - 1e-12
        if cell["estimator"] == "default":  # one interval per sample: does it hold the truth
            assert len(cell["covered"]) == cell["reps"] and all(isinstance(c, bool) for c in cell["covered"])
    assert "## Coverage of the default's 95% interval" in report
    for family in FAMILIES:  # the best kNN estimate of each cell is within a third of the truth
        for d in (2, 4):
            mine = [c for c in cells if (c["family"], c["d"]) == (family, d) and c["estimator"] != "flow cross-fit"]
            assert min(abs(c["bias"]) for c in mine) < 0.2 + mine[0]["true_kl"] / 3
    assert "wrote" in capsys.readouterr().out


def test_command_line_help_describes_the_benchmark():
    from typer.testing import CliRunner

    from gaussify.cli import app

    result = CliRunner().invoke(app, ["bench", "accuracy", "--help"])
    assert result.exit_code == 0
    assert "--mc-draws" in result.output and "--cache" in result.output and "Kozachenko" in result.output


def test_packaged_interval_is_the_one_fitted_on_the_committed_results():
    # kl_divergence's measured interval must come from the committed accuracy runs (rerun, or --render, with
    # --write-envelopes): accuracy.json for the kNN dimensions (d <= 8; its d = 16, 32 cells predate the switch to
    # the held-out Gaussianization), accuracy_high.json for the Gaussianization's (d > 8)
    results = Path(__file__).parents[1] / "benchmarks" / "results"
    packaged = divergence._error_envelopes()
    fitted = {}
    for name, keep in (("accuracy", lambda d: d <= divergence.RELIABLE_MAX_DIM),
                       ("accuracy_high", lambda d: d > divergence.RELIABLE_MAX_DIM)):
        cells = json.loads((results / f"{name}.json").read_text())["cells"]
        fitted |= {d: entry for d, entry in error_envelopes(cells)["dims"].items() if keep(int(d))}
    assert fitted.keys() == packaged["dims"].keys()
    for d, entry in fitted.items():
        assert entry["factor"] == packaged["dims"][d]["factor"] and entry["method"] == packaged["dims"][d]["method"]
        for n, env in entry["sizes"].items():
            for side in ("lower", "upper"):
                assert env[side] == pytest.approx(packaged["dims"][d]["sizes"][n][side], rel=1e-9, abs=1e-12)


def test_error_envelopes_hold_every_sample_and_widen_for_held_out_families():
    rng = np.random.default_rng(0)
    rows = [{"estimator": "default", "d": 2, "n": 500, "family": f"f{i}", "true_kl": t,
             "estimates": list(t + rng.normal(0.1 * i - 0.2, 0.05, 6))}
            for i, t in enumerate([0.1, 0.5, 1.0, 2.0, 3.0])]
    entry = error_envelopes(rows)["dims"]["2"]
    env = entry["sizes"]["500"]
    for r in rows:
        v = np.array(r["estimates"])
        assert np.all(v - env["lower"][0] - env["lower"][1] * v <= r["true_kl"] + 1e-9)
        assert np.all(r["true_kl"] <= v + env["upper"][0] + env["upper"][1] * v + 1e-9)
    assert entry["factor"] >= 1.0 and entry["held_out_coverage"] >= 0.95 > entry["unwidened_coverage"]


@pytest.mark.parametrize("kind", ["bimodal", "uniform", "laplace", "skewed"])
def test_rotated_product_kl_is_the_sum_of_its_coordinates_kls(kind):
    # exact by 1-D quadrature: KL(P ‖ N(0, I)) = Σ_j KL(f_j ‖ φ) for independent coordinates of unit variance
    from gaussify.bench.accuracy import HIGH_DIM_FAMILIES, RotatedProduct, _marginal_log_pdf

    family = RotatedProduct(8, kind, 2)
    assert family.scale == pytest.approx(1.0) and set(HIGH_DIM_FAMILIES) >= {"product_bimodal_4", "product_skewed_d8"}

    def integrand(x: float) -> float:
        log_f = float(_marginal_log_pdf(kind, np.array(x)))
        return math.exp(log_f) * (log_f - stats.norm.logpdf(x)) if np.isfinite(log_f) else 0.0

    exact = 2 * integrate.quad(integrand, -12, 12, limit=400, points=[-1.732, -0.9, 0.0, 0.9, 1.732])[0]
    mc, se = true_kl(family, 100_000)
    assert abs(mc - exact) < 4 * se + 1e-3


def test_rotated_gaussian_kl_is_its_placement():
    from gaussify.bench.accuracy import RotatedGaussian

    family = RotatedGaussian(16)
    lam, shift = family.variances / family.scale**2, family.shift / family.scale
    exact = 0.5 * float(np.sum(lam - 1 - np.log(lam) + shift**2))
    mc, se = true_kl(family, 50_000)
    assert abs(mc - exact) < 4 * se + 1e-6
    assert family.sample(20_000, np.random.default_rng(0)).var(axis=0).mean() == pytest.approx(1.0, abs=0.03)
