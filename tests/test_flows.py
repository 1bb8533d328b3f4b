"""GaussianizingFlow: invertibility, the exact log-density, Gaussianization on held-out points, persistence."""

import copy
import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from zuko.flows import GeneralCouplingTransform, MaskedAutoregressiveTransform

from gaussify import GaussianizingFlow, TrainingDiverged
from gaussify.flows import AUTO_COUPLING, AUTO_MAX_DIM, FLOWS, cross_fitted_flow_kl
from gaussify.metrics import kl_divergence

TINY = dict(n_transforms=2, hidden_features=(16, 16), bins=8, max_epochs=5, random_state=0)


def banana(n, d=3, seed=0):
    """Correlated, curved, skewed data: x_j = z_j + 0.5 (z_{j-1}² − 1), then a linear map."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    X = Z.copy()
    X[:, 1:] += 0.5 * (Z[:, :-1] ** 2 - 1)
    return X @ rng.normal(size=(d, d)) + 3.0


@pytest.fixture(scope="module")
def fitted():
    return GaussianizingFlow(**{**TINY, "max_epochs": 20}).fit(banana(600))


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_inverse_transform_undoes_transform(flow):
    X = banana(300)
    model = GaussianizingFlow(flow, **TINY).fit(X)
    far = np.vstack([X, 5 * (X - X.mean(0)) + X.mean(0)])  # also well outside the training range
    Z = model.transform(far)
    assert Z.dtype == np.float64 and Z.shape == far.shape
    np.testing.assert_allclose(model.inverse_transform(Z), far, atol=1e-4)
    G = np.random.default_rng(1).standard_normal((100, 3))
    np.testing.assert_allclose(model.transform(model.inverse_transform(G)), G, atol=1e-4)


def test_identity_flow_gives_the_density_of_the_whitening_gaussian(fitted):
    """With every flow parameter zero the flow is the identity, so p is N(mean_, Σ̂) of the whitening exactly."""
    model = copy.deepcopy(fitted)
    with torch.no_grad():
        for param in model.flow_.parameters():
            param.zero_()
    X = banana(50, seed=1)
    w = model.whitening_
    cov = w.components_.T @ np.diag(w.explained_variance_) @ w.components_
    np.testing.assert_allclose(model.score_samples(X), multivariate_normal(w.mean_, cov).logpdf(X), atol=1e-9)
    np.testing.assert_allclose(model.transform(X), w.transform(X), atol=1e-12)


def test_score_samples_is_the_change_of_variables(fitted):
    """log p(x) = log N(T(x); 0, I) + log |det ∂T/∂x| with the Jacobian of the whole input-scale map T by
    central finite differences (float64: error ~1e-9)."""
    X = banana(5, seed=2)
    h = 1e-5
    for x, score in zip(X, fitted.score_samples(X)):
        steps = np.vstack([x + h * np.eye(3), x - h * np.eye(3)])
        T = fitted.transform(steps)
        jac = (T[:3] - T[3:]).T / (2 * h)
        z = fitted.transform(x[None])[0]
        expected = norm.logpdf(z).sum() + np.linalg.slogdet(jac)[1]
        assert score == pytest.approx(expected, abs=1e-5)
    assert fitted.score(X) == pytest.approx(fitted.score_samples(X).mean())


def test_density_integrates_to_one_in_1d():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(1, 1, 300)])[:, None]
    model = GaussianizingFlow(**{**TINY, "max_epochs": 30}).fit(X)
    grid = np.linspace(X.mean() - 12 * X.std(), X.mean() + 12 * X.std(), 20001)
    assert np.trapezoid(np.exp(model.score_samples(grid[:, None])), grid) == pytest.approx(1.0, abs=1e-4)


def test_density_integrates_to_one_in_2d():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal([-2, 0], 0.7, (300, 2)), rng.normal([2, 1], [1.0, 0.5], (300, 2))])
    model = GaussianizingFlow(**{**TINY, "max_epochs": 30}).fit(X)
    axes = [np.linspace(c - 10 * X.std(), c + 10 * X.std(), 601) for c in X.mean(0)]
    a, b = np.meshgrid(*axes, indexing="ij")
    density = np.exp(model.score_samples(np.column_stack([a.ravel(), b.ravel()]))).reshape(a.shape)
    total = np.trapezoid(np.trapezoid(density, axes[1], axis=1), axes[0])
    assert total == pytest.approx(1.0, abs=2e-3)


def test_uniform_square_is_gaussianized_on_held_out_points():
    """A whitened uniform square (negentropy 2 (½ log 2πe − log 2√3) ≈ 0.35 nats) is driven to a held-out KL
    below 0.05, its worst case for a flow (hard edges; 8 bins overfit them less than 16).

    The KL is known exactly on fresh points: KL(p ‖ q) = KL(f#p ‖ N(0, I)) = −E_p log q − H(p), H(p) = log 12;
    on 20,000 rows its Monte Carlo error is ~0.001 (over 5 seeds it was 0.034–0.043). The kNN yardstick on 2,000
    held-out rows is too noisy for that bound (on exact N(0, I) samples of that size it reads 0.009 ± 0.017,
    up to 0.055 in 20 draws), so it is held to 0.05 plus 3 of its standard deviations."""
    rng = np.random.default_rng(0)
    half = np.sqrt(3.0)
    train, held_out = rng.uniform(-half, half, (5000, 2)), rng.uniform(-half, half, (20000, 2))
    model = GaussianizingFlow(n_transforms=2, bins=8, random_state=0).fit(train)
    assert -model.score(held_out) - np.log(12.0) < 0.05
    assert kl_divergence(held_out[:2000], n_jobs=1).value > 0.25  # what the flow starts from
    assert kl_divergence(model.transform(held_out[:2000]), n_jobs=1).value < 0.05 + 3 * 0.017


def test_same_seed_same_model_and_global_rng_untouched():
    X = banana(300)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    a = GaussianizingFlow(**TINY, noise=0.1).fit(X)
    b = GaussianizingFlow(**TINY, noise=0.1).fit(X)
    assert torch.equal(torch.get_rng_state(), torch_state) and np.array_equal(np.random.get_state()[1], numpy_state)
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = GaussianizingFlow(**{**TINY, "random_state": 1}, noise=0.1).fit(X)
    assert not np.allclose(a.transform(X), c.transform(X))


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_one_dimension(flow):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.5, 200), rng.normal(1, 1, 200)])
    model = GaussianizingFlow(flow, **TINY).fit(x[:, None])
    z = model.transform(x)  # a 1-D array is one column
    assert z.shape == (400, 1)
    np.testing.assert_allclose(model.inverse_transform(z), x[:, None], atol=1e-6)
    assert model.sample(7, random_state=0).shape == (7, 1)


def test_thirty_two_dimensions():
    X = np.random.default_rng(0).standard_normal((400, 32)) ** 3
    model = GaussianizingFlow(n_transforms=1, hidden_features=(32,), max_epochs=2, random_state=0).fit(X)
    Z = model.transform(X[:50])
    assert Z.shape == (50, 32) and np.isfinite(model.score_samples(X[:50])).all()
    np.testing.assert_allclose(model.inverse_transform(Z), X[:50], atol=1e-4)


@pytest.mark.parametrize("X, error, match", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), ValueError, "NaN"),
    (np.ones((1, 2)), ValueError, "at least 2 rows"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numeric"),
    (np.ones((2, 2, 2)), ValueError, "shape"),
    (np.column_stack([np.arange(10.0), np.ones(10)]), ValueError, "singular"),
    (np.random.default_rng(0).normal(size=(3, 5)), ValueError, "no more rows than columns"),
])
def test_bad_training_data(X, error, match):
    with pytest.raises(error, match=match):
        GaussianizingFlow(**TINY).fit(X)


def test_bad_new_data(fitted):
    with pytest.raises(NotFittedError):
        GaussianizingFlow().transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match="2 features, but GaussianizingFlow was fitted with 3"):
        fitted.transform(np.ones((4, 2)))
    for method in (fitted.transform, fitted.inverse_transform, fitted.score_samples):
        with pytest.raises(ValueError, match="NaN"):
            method(np.full((2, 3), np.nan))


@pytest.mark.parametrize("params, match", [
    ({"flow": "naf"}, "flow must be one of"), ({"flow": None}, "flow must be one of"),
    ({"n_transforms": 0}, "n_transforms"), ({"bins": 1}, "bins"),
    ({"hidden_features": (16, 0)}, "hidden_features"), ({"hidden_features": 16}, "hidden_features"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"weight_decay": -1.0}, "weight_decay"), ({"noise": float("nan")}, "noise"),
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"n_jobs": 0}, "n_jobs"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        GaussianizingFlow(**{**TINY, **params}).fit(banana(50))


def test_non_finite_loss_stops_with_a_clear_error():
    with pytest.raises(TrainingDiverged, match="negative log-likelihood became nan"):
        GaussianizingFlow(**{**TINY, "learning_rate": 1e30}).fit(banana(200))


def test_early_stopping_restores_the_best_epoch():
    """A large, fast-learning flow on 100 rows overfits: training stops ``n_iter_no_change`` epochs after the
    best validation NLL, and the kept weights score the validation rows as they did at that epoch."""
    X = banana(100)
    model = GaussianizingFlow(hidden_features=(128, 128), n_transforms=4, learning_rate=1e-2, batch_size=32,
                              validation_fraction=0.3, n_iter_no_change=5, max_epochs=300, random_state=3).fit(X)
    val_nll = model.history_["val_nll"]
    assert model.n_epochs_ < 300 and len(val_nll) == len(model.history_["train_nll"]) == model.n_epochs_
    assert model.best_epoch_ == int(np.argmin(val_nll)) + 1 == model.n_epochs_ - 5
    val_rows = np.random.default_rng(3).permutation(100)[:30]  # the split fit makes from random_state
    assert -model.score(X[val_rows]) == pytest.approx(val_nll[model.best_epoch_ - 1], abs=1e-4)
    assert -model.score(X[val_rows]) < val_nll[-1]


def test_explicit_validation_rows_stop_the_fit_and_every_row_is_fitted():
    X, X_val = np.split(banana(140), [100])
    model = GaussianizingFlow(hidden_features=(128, 128), n_transforms=4, learning_rate=1e-2, batch_size=32,
                              n_iter_no_change=5, max_epochs=300, random_state=3).fit(X, X_val=X_val)
    np.testing.assert_allclose(model.whitening_.mean_, X.mean(axis=0))  # no rows split off for validation
    val_nll = model.history_["val_nll"]
    assert model.best_epoch_ == int(np.argmin(val_nll)) + 1 < model.n_epochs_
    assert -model.score(X_val) == pytest.approx(val_nll[model.best_epoch_ - 1], abs=1e-4)
    with pytest.raises(ValueError, match="features"):
        GaussianizingFlow(**TINY).fit(X, X_val=X_val[:, :1])


def test_without_validation_it_trains_every_epoch():
    model = GaussianizingFlow(**{**TINY, "validation_fraction": 0.0}).fit(banana(100))
    assert model.n_epochs_ == model.best_epoch_ == 5 and model.history_["val_nll"] == []


def perturbed(model, seed=0):
    """``model`` with every flow parameter moved off the identity start by N(0, 0.3²) (a generic bijection)."""
    model = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.flow_.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return model


def test_coupling_log_prob_is_the_change_of_variables_by_autograd():
    """zuko's log_prob of the spline coupling flow equals log N(f(u)) + log |det ∂f/∂u| with the Jacobian by autograd,
    for a flow far from the identity (random parameters) on points inside and outside the splines' [−5, 5]."""
    model = perturbed(GaussianizingFlow("nsf-coupling", **TINY).fit(banana(200, d=5)))
    flow = model.flow_()
    U = torch.from_numpy(np.random.default_rng(0).normal(scale=3.0, size=(6, 5)))
    for u in U:
        jac = torch.autograd.functional.jacobian(lambda v: flow.transform(v), u)
        z = flow.transform(u)
        expected = -0.5 * (z @ z) - 2.5 * np.log(2 * np.pi) + torch.linalg.slogdet(jac)[1]
        assert (jac - torch.diag(torch.diagonal(jac))).abs().max() > 0.05  # the coordinates are coupled
        assert flow.log_prob(u).item() == pytest.approx(expected.item(), abs=1e-9)


def test_coupling_inverts_exactly_in_high_dimension():
    """Coupling inverts in one pass per layer, in closed form (the spline's inverse is a quadratic's root, to ~1e-7
    where a perturbed spline is steep), also far from the identity."""
    X = np.random.default_rng(0).standard_normal((300, 64)) ** 3
    model = perturbed(GaussianizingFlow("nsf-coupling", **TINY).fit(X))
    np.testing.assert_allclose(model.inverse_transform(model.transform(X)), X, atol=1e-5)
    G = np.random.default_rng(1).standard_normal((50, 64))
    np.testing.assert_allclose(model.transform(model.inverse_transform(G)), G, atol=1e-5)


def test_auto_is_autoregressive_up_to_its_dimension_and_coupling_above():
    small = GaussianizingFlow(**TINY).fit(np.random.default_rng(0).standard_normal((200, AUTO_MAX_DIM)))
    large = GaussianizingFlow(**{**TINY, "max_epochs": 1}).fit(
        np.random.default_rng(0).standard_normal((200, AUTO_MAX_DIM + 1)))
    assert (small.architecture_, large.architecture_) == ("nsf", AUTO_COUPLING)
    assert isinstance(small.flow_.transform.transforms[0], MaskedAutoregressiveTransform)
    assert isinstance(large.flow_.transform.transforms[0], GeneralCouplingTransform)
    assert GaussianizingFlow("maf", **TINY).fit(banana(100)).architecture_ == "maf"


def test_spline_coupling_fit_lowers_held_out_nll_in_32_dimensions():
    """Four bimodal coordinates (½ N(±2, 0.5²): the leading principal axes, as classes are in an embedding) among
    32 standard normal ones: the whitening's Gaussian, where the flow starts, misses their modes (negentropy
    ≈ 0.5 nats each), and a flow fitted on 3,000 rows scores 2,000 new rows higher than that Gaussian (0.31 nats at
    this seed; an affine coupling flow cannot bend a marginal and gains < 0.1; a flow that learned nothing keeps
    the start and gains exactly 0)."""
    rng = np.random.default_rng(0)

    def draw(n):
        X = rng.standard_normal((n, 32))
        X[:, :4] = rng.choice([-2.0, 2.0], (n, 4)) + 0.5 * rng.standard_normal((n, 4))
        return X

    X, held_out = draw(3000), draw(2000)
    model = GaussianizingFlow("nsf-coupling", **{**TINY, "max_epochs": 15, "batch_size": 128}).fit(X)
    w = model.whitening_
    gaussian = multivariate_normal(w.mean_, w.components_.T @ np.diag(w.explained_variance_) @ w.components_)
    assert model.best_epoch_ > 0
    assert model.score(held_out) > gaussian.logpdf(held_out).mean() + 0.15


def test_the_start_is_kept_when_no_epoch_beats_it_on_validation():
    """Validation compares every epoch with the start (the whitening's Gaussian, epoch 0): on a Gaussian sample a
    wide, fast-learning flow can only overfit, so the identity is kept and the map is the whitening."""
    X = np.random.default_rng(0).standard_normal((60, 8))
    model = GaussianizingFlow(hidden_features=(256, 256), n_transforms=4, learning_rate=3e-2, batch_size=8,
                              n_iter_no_change=3, max_epochs=50, random_state=0).fit(X)
    assert model.best_epoch_ == 0 and model.n_epochs_ == 3
    np.testing.assert_allclose(model.transform(X), model.whitening_.transform(X), atol=1e-12)


def test_coupling_flow_saves_and_loads_and_older_folders_still_load(tmp_path):
    X = np.random.default_rng(0).standard_normal((200, AUTO_MAX_DIM + 2)) ** 3
    model = perturbed(GaussianizingFlow(**{**TINY, "max_epochs": 1}).fit(X))  # "auto": coupling
    loaded = GaussianizingFlow.load(model.save(tmp_path / "coupling"))
    assert loaded.architecture_ == AUTO_COUPLING and loaded.get_params()["flow"] == "auto"
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.inverse_transform(X[:20]), model.inverse_transform(X[:20]))
    old = GaussianizingFlow("maf", **TINY).fit(banana(100))
    folder = old.save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["architecture"]  # as written before flow="auto"
    (folder / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(GaussianizingFlow.load(folder).transform(X[:5, :3]), old.transform(X[:5, :3]))


def test_save_load_round_trip(fitted, tmp_path):
    X = banana(40, seed=5)
    folder = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "flow.safetensors"]
    assert json.loads((folder / "config.json").read_text())["format"] == "gaussify.GaussianizingFlow/1"
    torch_state = torch.get_rng_state()
    loaded = GaussianizingFlow.load(folder)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(loaded.inverse_transform(X), fitted.inverse_transform(X))
    assert (loaded.history_, loaded.n_epochs_, loaded.best_epoch_) == \
        (fitted.history_, fitted.n_epochs_, fitted.best_epoch_)


def test_save_never_clobbers_user_files(fitted, tmp_path):
    folder = fitted.save(tmp_path / "model")
    with pytest.raises(ValueError, match="overwrite"):
        fitted.save(folder)
    fitted.save(folder, overwrite=True)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a gaussify model folder"):
        fitted.save(user, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="no gaussify model"):
        GaussianizingFlow.load(user)
    (user / "config.json").write_text(json.dumps({"format": "gaussify.GaussianEmbedder/1"}))
    with pytest.raises(ValueError, match="not a gaussify.GaussianizingFlow model"):
        GaussianizingFlow.load(user)


def test_sample_maps_standard_normal_draws_back(fitted):
    S = fitted.sample(100, random_state=0)
    np.testing.assert_array_equal(S, fitted.inverse_transform(np.random.default_rng(0).standard_normal((100, 3))))


def test_scikit_learn_conventions(capsys):
    model = GaussianizingFlow(bins=4, noise=0.1)
    assert clone(model).get_params() == model.get_params()
    assert not any(name.endswith("_") for name in vars(model))
    threads = torch.get_num_threads()
    model.set_params(**TINY, verbose=True, n_jobs=2).fit(banana(100))
    assert torch.get_num_threads() == threads
    assert "flow" in capsys.readouterr().err  # the progress bar


def test_cross_fitted_kl_of_a_gaussian_is_its_closed_form():
    # the whitening alone fits N(m, C) exactly: the estimate is KL(N(m, C) || N(0, I)) up to sampling noise
    rng = np.random.default_rng(0)
    mean, cov = np.array([1.0, 0.0]), np.diag([2.0, 0.5])
    Z = rng.multivariate_normal(mean, cov, size=2000)
    exact = 0.5 * (np.trace(cov) + mean @ mean - 2 - np.log(np.linalg.det(cov)))  # 0.75
    assert cross_fitted_flow_kl(Z, **TINY) == pytest.approx(exact, abs=0.08)  # sd of the held-out mean ~0.03
    assert abs(cross_fitted_flow_kl(Z, (mean, cov), **TINY)) < 0.03  # at the target: 0


def test_cross_fitted_kl_is_that_of_the_standardised_sample():
    Z = banana(400)
    mean, cov = np.array([3.0, 2.0, 1.0]), np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 4.0]])
    L = np.linalg.cholesky(cov)
    Y = np.linalg.solve(L, (Z - mean).T).T
    assert cross_fitted_flow_kl(Z, (mean, cov), **TINY) == pytest.approx(cross_fitted_flow_kl(Y, **TINY), abs=1e-9)


def test_cross_fitted_kl_is_a_lower_bound():
    # uniform square of unit variance: KL = 2 (½ log 2πe − log 2√3) = 0.353; a held-out density cannot beat it
    Z = np.random.default_rng(2).uniform(-np.sqrt(3), np.sqrt(3), (2000, 2))
    exact = 2 * (0.5 * np.log(2 * np.pi * np.e) - np.log(2 * np.sqrt(3)))
    estimate = cross_fitted_flow_kl(Z, random_state=0, max_epochs=30)
    assert 0.15 < estimate < exact + 0.05  # noise of the held-out mean: sd ~0.02


def test_cross_fitted_kl_refuses_too_few_rows():
    with pytest.raises(ValueError, match="cross-fitting needs at least 12 rows"):
        cross_fitted_flow_kl(np.random.default_rng(0).normal(size=(10, 4)))
    with pytest.raises(ValueError, match="NaN"):
        cross_fitted_flow_kl(np.full((20, 2), np.nan))
