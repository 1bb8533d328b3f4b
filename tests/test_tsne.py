"""The most-Gaussian t-SNE search and its scikit-learn face (openTSNE, small digits subsets, one thread)."""

import inspect

import numpy as np
import pytest
from openTSNE.affinity import PerplexityBasedNN
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

import gaussify.tsne as tsne_module
from gaussify.baselines import RBIG, PCAWhitening
from gaussify.metrics.divergence import kl_divergence
from gaussify.tsne import GaussianTSNE, most_gaussian_tsne

FAST = {"n_iter": 150, "early_exaggeration_iter": 100}  # shorter optimisation, same algorithm
TINY = {"n_iter": 20, "early_exaggeration_iter": 20}  # where only the bookkeeping is tested
# Every search scores on the same 360 rows: the KL estimator caches its Gaussian reference per (n, d), and a
# fresh reference costs seconds on two cores.


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:360], data.data[360:420]


@pytest.fixture(scope="module")
def search(digits):
    return most_gaussian_tsne(digits[0], perplexities=(5, 20), seeds=(0, 1), **FAST)


def test_every_run_is_reported(search):
    assert [(r["perplexity"], r["seed"], r["dof"]) for r in search.results] == [
        (5.0, 0, 1.0), (5.0, 1, 1.0), (20.0, 0, 1.0), (20.0, 1, 1.0)]
    for row in search.results:
        assert np.isclose(row["kl"], row["negentropy"] + row["placement"])
        assert row["tsne_kl"] > 0 and row["seconds"] > 0
    # different seeds give different runs
    assert search.results[0]["kl"] != search.results[1]["kl"]


def test_choice_is_the_argmin_and_embedding_is_that_run(search, digits):
    best = min(search.results, key=lambda r: r["kl"])
    assert {k: search.best[k] for k in best} == best
    Z = search.embedding
    assert Z.shape == (digits[0].shape[0], 2)
    # the run is standardised by one scalar: zero mean, unit average variance (not whitened)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose((Z**2).mean(), 1.0)
    # scoring the returned embedding again reproduces the chosen row: it is that run
    assert kl_divergence(Z, random_state=0, n_jobs=1).value == pytest.approx(best["kl"], rel=1e-9)


def test_negentropy_criterion_picks_its_own_argmin(digits):
    res = most_gaussian_tsne(digits[0], perplexities=(5, 20), seeds=(0, 1), criterion="negentropy", **FAST)
    assert res.best["negentropy"] == min(r["negentropy"] for r in res.results)


def test_graph_is_built_once_at_the_largest_perplexity(digits, monkeypatch):
    built = []

    class Counting(PerplexityBasedNN):
        def __init__(self, *args, **kwargs):
            built.append(kwargs["perplexity"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tsne_module, "PerplexityBasedNN", Counting)
    most_gaussian_tsne(digits[0], perplexities=(3, 10, 6), seeds=(0,), **TINY)
    assert built == [10.0]
    # reusing the first 3p neighbours of the large graph is exactly a fresh computation at perplexity p
    # (jittered: digits have integer pixels, so tied distances could order the 3p-th neighbour differently)
    X = digits[0][:200] + np.random.default_rng(0).normal(scale=1e-3, size=(200, 64))
    big = PerplexityBasedNN(X, perplexity=10, method="exact", n_jobs=1)
    big.set_perplexity(6)
    fresh = PerplexityBasedNN(X, perplexity=6, method="exact", n_jobs=1)
    np.testing.assert_allclose(big.P.toarray(), fresh.P.toarray(), atol=1e-12)


def test_transform_new_points(search, digits):
    train, new = digits
    Z = search.transform(new)
    assert Z.shape == (new.shape[0], 2) and np.isfinite(Z).all()
    # a training point re-embedded lands next to its own position: the same standardisation is applied
    again = search.transform(train[:40])
    spread = np.linalg.norm(search.embedding - search.embedding.mean(axis=0), axis=1).mean()
    assert np.median(np.linalg.norm(again - search.embedding[:40], axis=1)) < 0.1 * spread
    with pytest.raises(ValueError, match="features"):
        search.transform(new[:, :10])


def test_transform_places_new_points_at_the_chosen_perplexity(search, digits, monkeypatch):
    seen = []
    original = type(search.tsne_embedding).transform

    def spy(self, X, **params):
        seen.append(params.get("perplexity"))
        return original(self, X, **params)

    monkeypatch.setattr(type(search.tsne_embedding), "transform", spy)
    search.transform(digits[1])
    search.transform(digits[1], perplexity=5)  # still overridable
    assert seen == [search.best["perplexity"], 5]


def test_equal_arguments_give_equal_results_with_rbig(digits):
    train, new = digits
    a, b = (most_gaussian_tsne(train, perplexities=(10,), seeds=(0,), post="rbig", **TINY) for _ in range(2))
    np.testing.assert_array_equal(a.embedding, b.embedding)
    np.testing.assert_array_equal(a.transform(new), b.transform(new))
    assert a.post.random_state == 0  # the default random_state


def test_random_state_seeds_a_post_step_left_unseeded():
    assert tsne_module._check_post("rbig", 3).random_state == 3
    assert tsne_module._check_post(RBIG(), 3).random_state == 3
    assert tsne_module._check_post(RBIG(random_state=7), 3).random_state == 7  # the user's seed wins
    assert isinstance(tsne_module._check_post(PCAWhitening(), 3), PCAWhitening)  # no random_state: untouched


def test_one_thread_by_default():
    # all-core thread pools spin-wait on a busy machine (see the module docstring of gaussify.tsne)
    assert GaussianTSNE().n_jobs == 1
    for function in (most_gaussian_tsne, kl_divergence):
        assert inspect.signature(function).parameters["n_jobs"].default == 1


def test_post_whiten_composes(digits):
    train, new = digits
    res = most_gaussian_tsne(train, perplexities=(20,), seeds=(0,), post="whiten", **FAST)
    np.testing.assert_allclose(np.cov(res.embedding, rowvar=False), np.eye(2), atol=1e-10)
    assert res.best["post_kl"] == pytest.approx(kl_divergence(res.embedding, random_state=0, n_jobs=1).value)
    # the negentropy estimate is affine invariant (it self-whitens), so whitening leaves it unchanged
    assert res.best["post_negentropy"] == pytest.approx(res.best["negentropy"], rel=1e-9)
    assert res.best["post_placement"] == pytest.approx(0.0, abs=1e-9)
    again = res.transform(train[:40])  # the fitted whitening is applied to new points too
    spread = np.linalg.norm(res.embedding, axis=1).mean()
    assert np.median(np.linalg.norm(again - res.embedding[:40], axis=1)) < 0.1 * spread


def test_too_large_perplexities_are_dropped_with_a_warning(digits):
    X = digits[0]  # 360 rows: (n - 1)/3 = 119.7
    with pytest.warns(UserWarning, match=r"dropping perplexities \[150.0\]"):
        res = most_gaussian_tsne(X, perplexities=(5, 150), seeds=(0,), **TINY)
    assert [r["perplexity"] for r in res.results] == [5.0]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"perplexities": (50, 100)}, ValueError, "perplexities must be <= 13"),
    ({"perplexities": (5, 5)}, ValueError, "duplicates"),
    ({"perplexities": (0,)}, ValueError, "> 0"),
    ({"perplexities": 30}, TypeError, "sequence"),
    ({"seeds": (0.5,)}, TypeError, "seeds must be an integer >= 0"),
    ({"criterion": "mmd"}, ValueError, "unknown criterion 'mmd'"),
    ({"post": "pca"}, ValueError, "unknown baseline"),
    ({"n_components": 0}, ValueError, "n_components"),
    ({"random_state": -1}, ValueError, "random_state"),
    ({"random_state": None}, ValueError, "random_state"),
    ({"n_jobs": 0}, ValueError, "n_jobs must be -1"),
    ({"n_jobs": -2}, ValueError, "n_jobs must be -1"),
    ({"perplexity": 30}, TypeError, "set by the search"),
    ({"n_iterations": 30}, TypeError, "unknown openTSNE"),
])
def test_bad_arguments(digits, kwargs, error, match):
    with pytest.raises(error, match=match):
        most_gaussian_tsne(digits[0][:40], **kwargs)


def test_bad_data(digits):
    X = digits[0][:100].copy()
    X[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        most_gaussian_tsne(X, perplexities=(5,), seeds=(0,))
    with pytest.raises(ValueError, match="X has 3 rows"):  # too small for any perplexity >= 1
        most_gaussian_tsne(digits[0][:3], perplexities=(1, 5), seeds=(0,))


def test_progress_only_when_verbose(digits, capsys):
    kwargs = dict(perplexities=(5,), seeds=(0,), **TINY)
    most_gaussian_tsne(digits[0], **kwargs)
    assert "t-SNE runs" not in capsys.readouterr().err
    most_gaussian_tsne(digits[0], verbose=True, **kwargs)
    assert "t-SNE runs" in capsys.readouterr().err


def test_estimator_face(digits):
    train, new = digits
    est = GaussianTSNE(perplexities=(10,), seeds=(0, 1), random_state=3, tsne_params={"n_iter": 150,
                                                                                   "early_exaggeration_iter": 100})
    with pytest.raises(NotFittedError):
        est.transform(new)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()
    Z = est.fit_transform(train)
    assert Z is est.embedding_ and Z.shape == (train.shape[0], 2)
    assert est.n_features_in_ == 64 and len(est.results_) == 2 and est.best_["perplexity"] == 10.0
    assert est.transform(new).shape == (new.shape[0], 2)
    assert clone(est).get_params() == est.get_params() and est.get_params()["random_state"] == 3


def test_estimator_pandas_output(digits):
    pd = pytest.importorskip("pandas")
    train, new = digits
    frame = pd.DataFrame(train, index=np.arange(len(train)) + 1000)
    est = GaussianTSNE(perplexities=(10,), seeds=(0,), post="whiten", tsne_params=TINY)
    Z = est.set_output(transform="pandas").fit_transform(frame)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == ["gaussiantsne0", "gaussiantsne1"]
    assert (Z.index == frame.index).all()
    np.testing.assert_array_equal(Z.to_numpy(), est.embedding_)
    T = est.transform(new)
    assert isinstance(T, pd.DataFrame) and list(T.columns) == list(est.get_feature_names_out())
