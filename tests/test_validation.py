"""Tests of gaussify._validation: one way to check a parameter, one message naming it, and the deprecated names
of renamed parameters."""

from __future__ import annotations

import inspect
import re
import tempfile
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import gaussify
from gaussify import GaussianEmbedder, make_regularizer, metrics
from gaussify._validation import check_random_state
from gaussify.metrics.streaming import SlicedEppsPulley
from gaussify.regularizers import REGISTRY

Z = np.random.default_rng(0).standard_normal((60, 2))


def test_random_state_gives_a_generator_from_none_a_seed_or_a_generator():
    rng = np.random.default_rng(5)
    assert check_random_state(rng) is rng
    assert check_random_state(3).random() == np.random.default_rng(3).random()
    assert isinstance(check_random_state(None), np.random.Generator)
    for bad in (True, -1, 1.5, "0", np.random.RandomState(0)):
        with pytest.raises((TypeError, ValueError), match="random_state must be None, an integer >= 0"):
            check_random_state(bad)


@pytest.mark.parametrize("call, old, new", [
    (lambda **kw: SlicedEppsPulley(3, num_slices=4, **kw).directions, {"seed": 7}, {"random_state": 7}),
    (lambda **kw: metrics.sliced_wasserstein_to_gaussian(Z, num_slices=20, **kw), {"block_size": 3},
     {"slices_per_block": 3}),
])
def test_old_parameter_names_still_work_for_one_release_with_a_future_warning(call, old, new):
    with pytest.warns(FutureWarning, match=f"'{next(iter(old))}' is deprecated.*use '{next(iter(new))}'"):
        before = call(**old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(before, call(**new))
    with pytest.raises(TypeError, match="got both"):
        call(**old, **new)


@pytest.mark.parametrize("test", [metrics.energy_test, metrics.epps_pulley, metrics.mahalanobis_radius_test,
                                  lambda X, **kw: metrics.henze_zirkler(X, monte_carlo=True, **kw)])
def test_monte_carlo_p_values_take_none_or_a_generator(test):
    """None draws a fresh null, a Generator a reproducible one (each a valid (1 + count) / (n_sim + 1))."""
    fresh = test(Z, n_sim=19, random_state=None)
    assert fresh.pvalue * 20 == pytest.approx(round(fresh.pvalue * 20))
    first, again = (test(Z, n_sim=19, random_state=np.random.default_rng(1)) for _ in range(2))
    assert first == again


# ---------------------------------------------------------------------------------------------- the public API walk
# Every public function and constructor is called with bad values of each parameter whose kind its signature shows
# (int, real, bool, random_state, n_jobs); each must raise a ValueError or TypeError that names the parameter, before
# any work. Parameters of other kinds (arrays, callables, paths, strings, None-annotated objects) are not walked.
_VIEWS = np.random.default_rng(1).standard_normal((6, 5, 2))
_BASE = {"lidar": {"Z": _VIEWS}, "batch_pvalue": {"z": Z}, "evaluate_streaming": {"source": Z},
         "placement_bias": {"n": 60, "d": 2}, "kl_method": {"n": 60, "d": 2}}
"""The valid arguments each metrics function is called with (``Z``, 60 × 2, where not listed)."""
_BAD = {
    "int": [True, 2.5, 16.0, -3, "3"],
    "real": [True, float("nan"), float("inf"), -1.0, "1.0"],
    "bool": [1, "yes"],
    "random_state": [True, -1, 1.5, "0"],
    "n_jobs": [True, 2.0, 0, -2, "1"],
}


def _kind(parameter: inspect.Parameter) -> str | None:
    if parameter.name in ("random_state", "n_jobs"):
        return parameter.name
    words = set(re.findall(r"\w+", str(parameter.annotation)))
    return next((kind for word, kind in (("int", "int"), ("float", "real"), ("bool", "bool")) if word in words), None)


def _bad_values(owner: str, subject: Any, signature: inspect.Signature) -> list:
    """pytest cases ``(subject, parameter name, bad values)`` for every parameter of the signature that has a kind:
    the bad values of its kind, and None where neither the default nor the annotation allows it."""
    cases = []
    for parameter in signature.parameters.values():
        kind = _kind(parameter)
        if kind is None:
            continue
        none_is_bad = (kind != "random_state" and parameter.default is not None
                       and "None" not in str(parameter.annotation))
        cases.append(pytest.param(subject, parameter.name, _BAD[kind] + [None] * none_is_bad,
                                  id=f"{owner}-{parameter.name}"))
    return cases


def _ids(cases: list) -> set[str]:
    """The ``owner-parameter`` names the cases walk."""
    return {case.id for case in cases}


def _assert_rejected(call: Callable[[Any], Any], name: str, values: list) -> None:
    """``call(value)`` raises a ValueError or TypeError whose message names the parameter, for each bad value."""
    for value in values:
        try:
            call(value)
        except (TypeError, ValueError) as err:
            assert re.search(rf"\b{name}\b", str(err)), f"{name}={value!r} gave an error not naming it: {err!r}"
        else:
            pytest.fail(f"{name}={value!r} was accepted")


_METRICS_CASES = [case for name in metrics.__all__ if inspect.isfunction(getattr(metrics, name))
                  for case in _bad_values(name, getattr(metrics, name), inspect.signature(getattr(metrics, name)))]


def test_the_walk_reaches_every_kind_of_parameter():
    names = _ids(_METRICS_CASES)
    assert {"kl_divergence-k", "henze_zirkler-block_size", "evaluate-ci", "placement_bias-n", "lidar-delta",
            "normality_tests-random_state", "evaluate_streaming-t_max", "negentropy-n_jobs",
            "evaluate-verbose"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("function, name, values", _METRICS_CASES)
def test_bad_parameter_values_get_an_error_naming_the_parameter(function, name, values):
    base = _BASE.get(function.__name__, {"Z": Z})
    _assert_rejected(lambda value: function(**{**base, name: value}), name, values)


# ---------------------------------------------------------------------------- regularizers and the estimator
_REGULARIZER_CASES = [case for name in REGISTRY for case in _bad_values(name, name, inspect.signature(REGISTRY[name]))]


def test_the_regularizer_walk_reaches_every_regularizer():
    walked = {case.values[0] for case in _REGULARIZER_CASES}
    assert walked == set(REGISTRY)  # each has at least random_state
    assert {"swd-num_slices", "knn-k", "adversarial-hidden", "mmd-scales", "sigreg-t_max", "swd-split"} <= _ids(
        _REGULARIZER_CASES)


@pytest.mark.parametrize("regularizer, name, values", _REGULARIZER_CASES)
def test_bad_regularizer_options_get_an_error_naming_the_parameter(regularizer, name, values):
    _assert_rejected(lambda value: make_regularizer(regularizer, 3, **{name: value}), name, values)


@pytest.mark.parametrize("owner, name, values", _bad_values("GaussianEmbedder", "GaussianEmbedder",
                                                            inspect.signature(GaussianEmbedder)))
def test_bad_estimator_parameters_get_an_error_naming_the_parameter_before_any_work(owner, name, values):
    _assert_rejected(lambda value: GaussianEmbedder(**{"max_epochs": 1, name: value}).fit(Z), name, values)


# ------------------------------------------------------------------------------------- the rest of the public API
_PUBLIC_MODULES = ("gaussify", "gaussify.regularizers", "gaussify.embedder", "gaussify.flows", "gaussify.tsne",
                   "gaussify.baselines", "gaussify.training", "gaussify.target", "gaussify.tasks", "gaussify.plots",
                   "gaussify.io", "gaussify.model_folder", "gaussify.compare", "gaussify.datasets",
                   "gaussify.distributed", "gaussify.demo", "gaussify.lightning")
_RESULTS = {"GaussianityReport", "TSNESearchResult", "TrainResult", "OrderStatisticBand"}
"""Result containers the package returns (dataclasses a user reads, never builds): not walked."""
_WALKED_ELSEWHERE = {"GaussianEmbedder", "make_regularizer", *(REGISTRY.class_name(name) for name in REGISTRY),
                     "evaluate", "evaluate_streaming"}
"""Walked by the tests above (the estimator, every registered regularizer, the metrics)."""


def _fitting(estimator: type, **base: Any) -> Callable[..., Any]:
    """``estimator(**base, **params).fit(Z)``: an estimator checks its parameters in ``fit``."""
    return lambda **params: estimator(**{**base, **params}).fit(Z)


def _public_calls() -> dict[str, tuple[Any, Callable[..., Any]]]:
    """``module.name`` → (the public function or class, a call of it with valid arguments that a keyword overrides)."""
    import torch
    from matplotlib.figure import Figure

    from gaussify import baselines, compare, datasets, demo, distributed, embedder, flows, io, model_folder, plots
    from gaussify import regularizers
    from gaussify import tasks, training, tsne

    tensor = torch.from_numpy(Z).float()
    swd = make_regularizer("swd", 2, random_state=0)
    calls: dict[str, tuple[Any, Callable[..., Any]]] = {
        "regularizers.GaussianHead": (regularizers.GaussianHead,
                                      partial(regularizers.GaussianHead, in_features=3, out_features=2)),
        "regularizers.Combination": (regularizers.Combination,
                                     partial(regularizers.Combination, target=2, parts=[(1.0, swd)])),
        "regularizers.Regularizer": (regularizers.Regularizer, partial(regularizers.Regularizer, target=2)),
        "embedder.default_regularizer": (embedder.default_regularizer,
                                         partial(embedder.default_regularizer, n_components=2)),
        "embedder.default_input_noise": (embedder.default_input_noise,
                                         partial(embedder.default_input_noise, n_components=2)),
        "embedder.Encoder": (embedder.Encoder, partial(embedder.Encoder, n_features=2, n_components=2, hidden=(4,),
                                                       stochastic=False)),
        "flows.GaussianizingFlow": (flows.GaussianizingFlow, _fitting(flows.GaussianizingFlow, max_epochs=1)),
        "flows.cross_fitted_flow_kl": (flows.cross_fitted_flow_kl, partial(flows.cross_fitted_flow_kl, Z=Z,
                                                                           max_epochs=1)),
        "tsne.most_gaussian_tsne": (tsne.most_gaussian_tsne, partial(tsne.most_gaussian_tsne, X=Z, perplexities=(5,),
                                                                     seeds=(0,))),
        "tsne.GaussianTSNE": (tsne.GaussianTSNE, _fitting(tsne.GaussianTSNE, perplexities=(5,), seeds=(0,))),
        "baselines.QuantileGaussianizer": (baselines.QuantileGaussianizer, _fitting(baselines.QuantileGaussianizer)),
        "baselines.RBIG": (baselines.RBIG, _fitting(baselines.RBIG, n_layers=2)),
        "training.DualWeight": (training.DualWeight, partial(training.DualWeight, regularizer=swd, batch_size=16,
                                                             batches_per_epoch=2, random_state=0)),
        "training.train": (training.train, partial(
            training.train, encoder=torch.nn.Linear(2, 2), regularizer=swd,
            task=tasks.ReconstructionTask(dim=2, n_features=2, hidden=(4,)), X=tensor, train_idx=torch.arange(60),
            val_idx=None, weight=1.0, max_epochs=1, batch_size=30, learning_rate=1e-3, n_iter_no_change=5,
            random_state=0, verbose=False)),
        "tasks.ClassificationTask": (tasks.ClassificationTask, partial(
            tasks.ClassificationTask, labels=torch.arange(60) % 3, dim=2, n_classes=3)),
        "tasks.RegressionTask": (tasks.RegressionTask, partial(tasks.RegressionTask, targets=tensor, dim=2)),
        "tasks.ReconstructionTask": (tasks.ReconstructionTask, partial(tasks.ReconstructionTask, dim=2, n_features=2,
                                                                       hidden=(4,))),
        "tasks.few_rows_per_class": (tasks.few_rows_per_class, partial(tasks.few_rows_per_class, n_classes=3,
                                                                       n_rows=60)),
        "plots.order_statistic_band": (plots.order_statistic_band, partial(plots.order_statistic_band, n=60)),
        "plots.fitted_mahalanobis_band": (plots.fitted_mahalanobis_band, partial(plots.fitted_mahalanobis_band, n=60,
                                                                                 d=2)),
        **{f"plots.{name}": (getattr(plots, name), partial(getattr(plots, name), Z=Z))
           for name in ("qq_plot", "mahalanobis_qq", "pair_plot", "marginals_plot", "projection_qq")},
        "plots.directions_plot": (plots.directions_plot, partial(plots.directions_plot, Z=Z, kind="placement",
                                                                  where=metrics.where_non_gaussian(Z))),
        "plots.training_curves": (plots.training_curves, partial(plots.training_curves, history={"loss": [1.0, 0.5]})),
        "plots.figure_to_base64_png": (plots.figure_to_base64_png, partial(plots.figure_to_base64_png, fig=Figure())),
        # a file that does not exist: the parameters are checked before the file is read
        "io.read_table": (io.read_table, partial(io.read_table, path="missing.npy")),
        "io.read_target": (io.read_target, partial(io.read_target, path="missing.json", dim=2)),
        "io.check_output": (io.check_output, partial(io.check_output, path="missing.npy")),
        "model_folder.check_model_folder": (model_folder.check_model_folder, partial(
            model_folder.check_model_folder, directory="missing", files=(), config="config.json", model_format="x")),
        "model_folder.embedder_target": (model_folder.embedder_target, partial(model_folder.embedder_target,
                                                                               directory="missing", dim=2)),
        "compare.score_embedding": (compare.score_embedding, partial(compare.score_embedding, Z_test=Z,
                                                                     y_test=np.arange(60) % 3)),
        **{f"datasets.{name}": (getattr(datasets, name), partial(getattr(datasets, name), n_samples=100))
           for name in ("mnist1d", "moons", "swiss_roll", "gaussian_mixture")},
        "distributed.gather_with_grad": (distributed.gather_with_grad, partial(distributed.gather_with_grad,
                                                                              z=tensor)),
        "distributed.broadcast_seed": (distributed.broadcast_seed, partial(distributed.broadcast_seed, seed=0)),
        "demo.run_demo": (demo.run_demo, partial(demo.run_demo, out=Path(tempfile.gettempdir()) / "gaussify-walk-demo",
                                                 quick=True)),
    }
    try:
        from gaussify import lightning
    except ImportError:  # the optional extra
        return calls
    calls["lightning.GaussianRegularization"] = (lightning.GaussianRegularization, partial(
        lightning.GaussianRegularization, regularizer=swd))
    return calls


_PUBLIC = _public_calls()
_PUBLIC_CASES = [case for owner, (subject, call) in _PUBLIC.items()
                 for case in _bad_values(owner, call, inspect.signature(subject))]


def _walkable(subject: Any) -> bool:
    """True for a function or class with a parameter of a kind the walk knows."""
    if not (inspect.isfunction(subject) or inspect.isclass(subject)) or subject.__name__ in _RESULTS:
        return False
    try:
        parameters = inspect.signature(subject).parameters.values()
    except ValueError:  # an exception class (TrainingDiverged) has no signature
        return False
    return any(_kind(parameter) for parameter in parameters)


def test_the_public_walk_reaches_every_public_function_and_class_with_a_parameter_of_a_kind():
    import importlib

    walkable = set()
    for module_name in _PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # gaussify.lightning without the extra
            continue
        walkable |= {name for name in module.__all__ if _walkable(getattr(module, name))}
    assert walkable - _WALKED_ELSEWHERE == {owner.split(".")[1] for owner in _PUBLIC}


@pytest.mark.parametrize("call, name, values", _PUBLIC_CASES)
def test_bad_public_parameters_get_an_error_naming_the_parameter_before_any_work(call, name, values):
    import matplotlib.pyplot as plt

    try:
        _assert_rejected(lambda value: call(**{name: value}), name, values)
    finally:
        plt.close("all")


def test_weight_true_is_rejected():
    with pytest.raises(ValueError, match="weight must be a finite number >= 0 or 'auto', got True"):
        GaussianEmbedder(weight=True).fit(Z)


@pytest.mark.parametrize("call, old, new", [
    (lambda **kw: make_regularizer("swd", 3, **kw).seed, {"seed": 4}, {"random_state": 4}),
    (lambda **kw: make_regularizer("swd", 3, random_state=0, **kw).num_slices, {"num_projections": 8},
     {"num_slices": 8}),
])
def test_old_regularizer_names_still_work_for_one_release(call, old, new):
    with pytest.warns(FutureWarning, match=f"'{next(iter(old))}' is deprecated.*use '{next(iter(new))}'"):
        before = call(**old)
    assert before == call(**new)


def test_the_1d_epps_pulley_statistic_is_epps_pulley_1d():
    import torch

    from gaussify.regularizers import sigreg

    x = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    with pytest.warns(FutureWarning, match="epps_pulley_1d"):
        torch.testing.assert_close(sigreg.epps_pulley(x), sigreg.epps_pulley_1d(x))


def test_regularizers_take_the_target_forms_of_the_metrics():
    import torch

    mean, cov = np.array([1.0, -1.0]), np.array([[2.0, 0.3], [0.3, 1.0]])
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = [make_regularizer("swd", target, random_state=0).double()(z)
              for target in ((mean, cov), [mean, cov], gaussify.Gaussian(mean, cov))]
    assert values[0] == values[1] == values[2]
    with pytest.raises(TypeError, match="target"):
        make_regularizer("swd", None)
