"""Tests for gaussify.plots: figure structure, saved files, and the statistics behind the envelopes."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy import stats

from gaussify import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data_line(ax):
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "data"]
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


def _data_scatter(ax):
    (coll,) = [c for c in ax.collections if c.get_gid() == "data"]
    return coll


def _legend_texts(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


# --------------------------------------------------------------------------- envelope statistics


@pytest.mark.parametrize("dist", [stats.norm(), stats.chi2(3)], ids=["normal", "chi2_3"])
def test_band_matches_simulated_order_statistic_quantiles(dist):
    # Empirical p-quantiles of each order statistic over R replications have standard error
    # sqrt(p(1-p)/R) / g(q_p), g the density of X_(i): g(x) = Beta(i, n-i+1).pdf(F(x)) f(x).
    n, R = 20, 20_000
    rng = np.random.default_rng(11)
    sims = np.sort(dist.rvs(size=(R, n), random_state=rng), axis=1)
    band = plots.order_statistic_band(n, 0.95, dist=dist)
    i = np.arange(1, n + 1)
    for p, q in ((0.025, band.lower), (0.5, band.center), (0.975, band.upper)):
        g = stats.beta.pdf(dist.cdf(q), i, n - i + 1) * dist.pdf(q)
        se = np.sqrt(p * (1 - p) / R) / g
        z = (np.quantile(sims, p, axis=0) - q) / se
        assert np.abs(z).max() < 4.5, (p, z)  # 60 comparisons per distribution


def test_normal_envelope_pointwise_coverage():
    # Each order statistic leaves its own 95% band with probability exactly 0.05 (0.025 per side).
    # Per rank the count over R samples is Binomial(R, p); the all-ranks fraction has mean p and a
    # standard error at most sqrt(p(1-p)/R) (an average of correlated indicators varies no more than one).
    n, R = 50, 4000
    rng = np.random.default_rng(3)
    X = np.sort(rng.standard_normal((R, n)), axis=1)
    band = plots.order_statistic_band(n, 0.95)
    below, above = X < band.lower, X > band.upper
    for frac, p in ((below.mean(), 0.025), (above.mean(), 0.025), ((below | above).mean(), 0.05)):
        assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / R), (frac, p)
    per_rank = (below | above).mean(axis=0)
    assert np.abs(per_rank - 0.05).max() < 4.5 * np.sqrt(0.05 * 0.95 / R)


def test_fitted_mahalanobis_band_coverage():
    # The fitted D² are dependent; the band must still cover ~95% pointwise. Tolerances as above.
    n, d, R = 100, 3, 3000
    rng = np.random.default_rng(5)
    X = rng.standard_normal((R, n, d))
    C = X - X.mean(axis=1, keepdims=True)
    S = np.einsum("rni,rnj->rij", C, C) / (n - 1)
    D2 = np.sort(np.einsum("rni,rij,rnj->rn", C, np.linalg.inv(S), C), axis=1)
    band = plots.fitted_mahalanobis_band(n, d, 0.95)
    below, above = D2 < band.lower, D2 > band.upper
    for frac, p in ((below.mean(), 0.025), (above.mean(), 0.025), ((below | above).mean(), 0.05)):
        assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / R), (frac, p)
    # the iid Beta band would be far too wide in the middle ranks (it covers ~99%)
    naive = plots.order_statistic_band(n, 0.95, dist=stats.beta(d / 2, (n - d - 1) / 2, scale=(n - 1) ** 2 / n))
    assert ((D2 < naive.lower) | (D2 > naive.upper)).mean() < 0.03


def test_band_rejects_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        plots.order_statistic_band(10, 1.0)
    with pytest.raises(ValueError, match="ranks"):
        plots.order_statistic_band(10, ranks=[0, 10])
    with pytest.raises(TypeError, match="ppf"):
        plots.order_statistic_band(10, dist=object())
    with pytest.raises(ValueError, match="n >= d \\+ 2"):
        plots.fitted_mahalanobis_band(4, 3)


# --------------------------------------------------------------------------- QQ plots


def test_qq_plot_structure_saves_and_uses_band(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((300, 5))
    path = tmp_path / "sub" / "qq.png"
    fig = plots.qq_plot(Z, path=path, dpi=60)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    assert path.read_bytes()[:8] == PNG_MAGIC
    band = plots.order_statistic_band(300, 0.95)
    x, y = _data_line(fig.axes[2])
    np.testing.assert_allclose(x, band.center)
    np.testing.assert_array_equal(y, np.sort(Z[:, 2]))
    (envelope,) = fig.axes[2].collections
    verts = envelope.get_paths()[0].vertices
    assert np.isclose(verts[:, 1].min(), band.lower.min()) and np.isclose(verts[:, 1].max(), band.upper.max())
    assert len(plots.qq_plot(rng.standard_normal((50, 12))).axes) == 8  # max_dims
    assert len(plots.qq_plot(Z, dims=[4, 1]).axes) == 2
    assert len(plots.qq_plot(Z, envelope=None).axes[0].collections) == 0


def test_qq_plot_is_against_a_fixed_standard_normal():
    # Not re-standardised per column: mean(y - x) estimates the column mean (SE 1/sqrt(n); the
    # x-values are symmetric about 0) and the QQ slope its sd (SE ~ sd/sqrt(2n)); 4 SE tolerances.
    n = 2000
    rng = np.random.default_rng(1)
    Z = np.column_stack([0.5 + rng.standard_normal(n), 2.0 * rng.standard_normal(n)])
    x0, y0 = _data_line(plots.qq_plot(Z).axes[0])
    assert abs(np.mean(y0 - x0) - 0.5) < 4 / np.sqrt(n)
    slope = np.polyfit(*_data_line(plots.qq_plot(Z).axes[1]), 1)[0]
    assert abs(slope - 2.0) < 4 * 2.0 / np.sqrt(2 * n)
    target = (np.array([0.5, 0.0]), np.diag([1.0, 4.0]))
    fig = plots.qq_plot(Z, target)
    x0, y0 = _data_line(fig.axes[0])
    assert abs(np.mean(y0 - x0)) < 4 / np.sqrt(n)
    assert abs(np.polyfit(*_data_line(fig.axes[1]), 1)[0] - 1.0) < 4 / np.sqrt(2 * n)


def test_qq_thinning_keeps_extremes_and_is_deterministic():
    rng = np.random.default_rng(2)
    Z = rng.standard_t(3, size=(50_000, 1))
    x, y = _data_line(plots.qq_plot(Z, max_points=300).axes[0])
    assert 250 <= y.size <= 300
    assert y[0] == Z.min() and y[-1] == Z.max()
    assert np.all(np.diff(x) > 0)
    np.testing.assert_array_equal(y, _data_line(plots.qq_plot(Z, max_points=300).axes[0])[1])


def test_mahalanobis_qq(tmp_path):
    rng = np.random.default_rng(4)
    n, d = 400, 3
    mean, A = np.array([1.0, -2.0, 0.5]), np.array([[2.0, 0, 0], [0.5, 1.0, 0], [0.1, -0.3, 0.7]])
    Z = mean + rng.standard_normal((n, d)) @ A.T
    fig = plots.mahalanobis_qq(Z, (mean, A @ A.T), path=tmp_path / "m.svg")
    assert len(fig.axes) == 2 and (tmp_path / "m.svg").stat().st_size > 0
    S = np.linalg.solve(A, (Z - mean).T).T
    np.testing.assert_allclose(_data_line(fig.axes[0])[1], np.sort((S**2).sum(axis=1)), rtol=1e-10)
    _, fitted = _data_line(fig.axes[1])
    assert np.isclose(fitted.mean(), (n - 1) * d / n)  # exact: sum of D² = (n-1) tr(S⁻¹S)
    # fitted panel is affine invariant; the target panel is not
    other = plots.mahalanobis_qq(3.0 * Z[:, ::-1] - 7.0)
    np.testing.assert_allclose(_data_line(other.axes[1])[1], fitted, rtol=1e-9)
    assert len(plots.mahalanobis_qq(Z, fitted=False).axes) == 1


# --------------------------------------------------------------------------- pair plot


def test_pair_plot_structure_contours_and_diagonal(tmp_path):
    rng = np.random.default_rng(6)
    Z = rng.standard_normal((500, 6))
    fig = plots.pair_plot(Z, max_dims=4, path=tmp_path / "pair.pdf", dpi=60)
    assert len(fig.axes) == 10 and (tmp_path / "pair.pdf").read_bytes()[:4] == b"%PDF"
    off_diag = fig.axes[1]  # row 1, column 0
    radii = sorted(np.hypot(ln.get_xdata(), ln.get_ydata()).mean() for ln in off_diag.get_lines())
    np.testing.assert_allclose(radii, [1.0, 2.0, 3.0])
    assert len(_data_scatter(off_diag).get_offsets()) == 500
    (hist,) = fig.axes[0].patches
    values, edges, _ = hist.get_data()
    assert np.isclose((values * np.diff(edges)).sum(), 1.0)  # a density over every row
    heavy = plots.pair_plot(rng.standard_cauchy((2000, 2)), max_points=50)
    for ax in (heavy.axes[0], heavy.axes[2]):  # undrawn extreme rows still count in the diagonal
        values, edges, _ = ax.patches[0].get_data()
        assert np.isclose((values * np.diff(edges)).sum(), 1.0)
    assert len(plots.pair_plot(Z[:, :1]).axes) == 1
    assert len(plots.pair_plot(Z, dims=[0, 5]).axes) == 3
    hexfig = plots.pair_plot(rng.standard_normal((5000, 2)), kind="hexbin")
    assert len(hexfig.axes) == 3 and hexfig.axes[1].collections[0].get_array().sum() == 5000


def test_pair_plot_subsampling_is_seeded():
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((3000, 2))

    def drawn(seed):
        return _data_scatter(plots.pair_plot(Z, max_points=200, random_state=seed).axes[1]).get_offsets()

    a, b, c = drawn(0), drawn(0), drawn(1)
    assert a.shape == (200, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.sort(a[:, 0]), np.sort(c[:, 0]))
    # drawn points are rows of Z (x = dim 0, y = dim 1), without repeats
    rows = {tuple(r) for r in Z}
    assert all(tuple(r) in rows for r in np.asarray(a)) and len({tuple(r) for r in np.asarray(a)}) == 200


def test_pair_plot_labels_colour_points_and_legend():
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((600, 3))
    names = np.array(["cat", "dog", "eel"])
    code = np.digitize(Z[:, 0], [-0.5, 0.5])  # class determined by the x coordinate of dim 0
    fig = plots.pair_plot(Z, labels=names[code])
    texts = _legend_texts(fig)
    assert [texts.count(name) for name in names] == [1, 1, 1]
    coll = _data_scatter(fig.axes[1])  # x = dim 0
    expected = np.asarray(colormaps["tab10"].colors)[np.digitize(coll.get_offsets()[:, 0], [-0.5, 0.5])]
    np.testing.assert_allclose(coll.get_facecolors()[:, :3], expected)
    # each class's diagonal outline is its share: together they rebuild the overall density
    overall, *parts = [p.get_data().values for p in fig.axes[0].patches]
    np.testing.assert_allclose(np.sum(parts, axis=0), overall)
    # 1-D: just the marginal, still one legend entry per class
    one = plots.pair_plot(Z[:, :1], labels=code)
    assert len(one.axes) == 1 and [_legend_texts(one).count(str(k)) for k in range(3)] == [1, 1, 1]
    many = plots.pair_plot(Z, labels=np.arange(600) % 25)
    assert not any(t.isdigit() for t in _legend_texts(many))  # > 20 classes: no class legend


# --------------------------------------------------------------------------- other plots


def test_marginals_plot(tmp_path):
    rng = np.random.default_rng(9)
    Z = rng.standard_normal((800, 20)) * 2.0 + 1.0
    fig = plots.marginals_plot(Z, target=(np.ones(20), 4.0 * np.eye(20)), path=tmp_path / "marg.png", dpi=40)
    assert len(fig.axes) == 16 and (tmp_path / "marg.png").read_bytes()[:8] == PNG_MAGIC
    values, edges, _ = fig.axes[3].patches[0].get_data()
    assert np.isclose((values * np.diff(edges)).sum(), 1.0)
    s = (Z[:, 3] - 1.0) / 2.0
    assert f"mean {s.mean():+.2f}" in fig.axes[3].texts[0].get_text()
    assert len(plots.marginals_plot(Z, dims=[0, 19]).axes) == 2


def test_projection_qq():
    rng = np.random.default_rng(10)
    Z = rng.standard_normal((400, 5))
    fig = plots.projection_qq(Z, num_projections=4, random_state=3)
    assert len(fig.axes) == 4
    U = np.random.default_rng(3).standard_normal((4, 5))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    np.testing.assert_allclose(_data_line(fig.axes[2])[1], np.sort(Z @ U[2]))
    again = plots.projection_qq(Z, num_projections=4, random_state=3)
    np.testing.assert_array_equal(_data_line(again.axes[2])[1], _data_line(fig.axes[2])[1])


def test_training_curves_and_base64(tmp_path):
    fig = plots.training_curves({"task": [1.0, 0.5, 0.3], "reg": [0.2, 0.1, 0.05, 0.01]},
                                path=tmp_path / "loss.png")
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    assert _legend_texts(fig) == ["task", "reg"]
    assert plots.training_curves({"gan": [0.3, -0.2]}).axes[0].get_yscale() == "linear"
    payload = plots.figure_to_base64_png(fig, dpi=50)
    assert base64.b64decode(payload)[:8] == PNG_MAGIC


def test_figures_build_concurrently_in_threads(tmp_path):
    rng = np.random.default_rng(12)
    Z = rng.standard_normal((200, 3))
    jobs = [lambda k=k: plots.qq_plot(Z, path=tmp_path / f"t{k}.png", dpi=40) for k in range(3)]
    with ThreadPoolExecutor(3) as pool:
        figs = list(pool.map(lambda f: f(), jobs))
    assert all(len(f.axes) == 3 for f in figs)
    assert len({(tmp_path / f"t{k}.png").read_bytes() for k in range(3)}) == 1  # identical output


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda Z: plots.pair_plot(Z, labels=np.zeros(5)), "one entry per row"),
        (lambda Z: plots.pair_plot(Z, labels=np.zeros((40, 2))), "1-D"),
        (lambda Z: plots.pair_plot(Z, labels=np.zeros(40), kind="hexbin"), "labels"),
        (lambda Z: plots.pair_plot(Z, kind="kde"), "kind"),
        (lambda Z: plots.qq_plot(Z, dims=[0, 3]), r"\[0, 3\)"),
        (lambda Z: plots.qq_plot(Z, dims=[-1]), r"\[0, 3\)"),
        (lambda Z: plots.qq_plot(Z, dims=[1, 1]), "repeat"),
        (lambda Z: plots.qq_plot(Z, dims=[0.5]), "integer"),
        (lambda Z: plots.marginals_plot(Z, max_dims=0), "max_dims"),
        (lambda Z: plots.qq_plot(Z, envelope=1.5), "envelope"),
        (lambda Z: plots.qq_plot(Z, max_points=1), "max_points"),
        (lambda Z: plots.qq_plot(Z, path="out.jpg"), r"\.png"),
        (lambda Z: plots.projection_qq(Z, num_projections=0), "num_projections"),
        (lambda Z: plots.mahalanobis_qq(Z[:4]), "n >= d \\+ 2"),
        (lambda Z: plots.mahalanobis_qq(np.column_stack([Z[:, :2], np.ones(40)])), "singular"),
        (lambda Z: plots.qq_plot(np.where(np.arange(3) == 1, np.nan, Z)), "NaN"),
        (lambda Z: plots.qq_plot(Z, target=(np.zeros(2), np.eye(2))), "dimension"),
        (lambda Z: plots.training_curves({}), "non-empty"),
        (lambda Z: plots.training_curves({"a": []}), "empty"),
        (lambda Z: plots.training_curves({"a": [1.0, float("nan")]}), "step 2"),
        (lambda Z: plots.training_curves({"a": [1.0, -1.0]}, logy=True), "positive"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    Z = np.random.default_rng(13).standard_normal((40, 3))
    with pytest.raises(ValueError, match=match):
        call(Z)


def test_figure_to_base64_rejects_non_figures():
    with pytest.raises(TypeError, match="Figure"):
        plots.figure_to_base64_png("not a figure")

