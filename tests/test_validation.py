"""Tests of gaussify._validation: one way to check a parameter, one message naming it, and the deprecated names
of renamed parameters."""

from __future__ import annotations

import inspect
import re
import warnings

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
# Every public metrics function that takes an int or a real parameter is called with bad values of it (the cases
# come from the signatures); each must raise a ValueError or TypeError that names the parameter, before any work.
_VIEWS = np.random.default_rng(1).standard_normal((6, 5, 2))
_BASE = {"lidar": {"Z": _VIEWS}, "batch_pvalue": {"z": Z}, "evaluate_streaming": {"source": Z},
         "placement_bias": {"n": 60, "d": 2}}
"""The valid arguments each function is called with (``Z``, 60 × 2, where not listed)."""
_BAD = {
    "int": [True, 2.5, 16.0, -3, "3"],
    "real": [True, float("nan"), float("inf"), -1.0, "1.0"],
    "random_state": [True, -1, 1.5, "0"],
    "n_jobs": [True, 2.0, 0, -2, "1"],
}


def _kind(parameter: inspect.Parameter) -> str | None:
    if parameter.name in ("random_state", "n_jobs"):
        return parameter.name
    words = set(re.findall(r"\w+", str(parameter.annotation)))
    return "int" if "int" in words else "real" if "float" in words else None


def _cases() -> list:
    cases = []
    for name in metrics.__all__:
        function = getattr(metrics, name)
        if not inspect.isfunction(function):
            continue
        for parameter in inspect.signature(function).parameters.values():
            kind = _kind(parameter)
            none_is_bad = kind in ("int", "real", "n_jobs") and parameter.default is not None
            for value in _BAD.get(kind, []) + [None] * none_is_bad:
                cases.append(pytest.param(function, parameter.name, value, id=f"{name}-{parameter.name}={value!r}"))
    return cases


def test_the_walk_reaches_every_kind_of_parameter():
    names = {case.id.split("=")[0] for case in _cases()}
    assert {"kl_divergence-k", "henze_zirkler-block_size", "evaluate-ci", "placement_bias-n", "lidar-delta",
            "normality_tests-random_state", "evaluate_streaming-t_max", "negentropy-n_jobs"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("function, name, value", _cases())
def test_bad_parameter_values_get_an_error_naming_the_parameter(function, name, value):
    kwargs = {**_BASE.get(function.__name__, {"Z": Z}), name: value}
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        function(**kwargs)


# ---------------------------------------------------------------------------- regularizers and the estimator
def _bad_values(owner: str, signature: inspect.Signature) -> list:
    """(parameter name, bad value) cases from a signature, as in the metrics walk (None where it is not allowed)."""
    cases = []
    for parameter in signature.parameters.values():
        kind = _kind(parameter)
        none_is_bad = kind in ("int", "real", "n_jobs") and parameter.default is not None
        for value in _BAD.get(kind, []) + [None] * none_is_bad:
            cases.append(pytest.param(owner, parameter.name, value, id=f"{owner}-{parameter.name}={value!r}"))
    return cases


_REGULARIZER_CASES = [case for name in REGISTRY for case in _bad_values(name, inspect.signature(REGISTRY[name]))]


def test_the_regularizer_walk_reaches_every_regularizer():
    walked = {case.values[0] for case in _REGULARIZER_CASES}
    assert walked == set(REGISTRY)  # each has at least random_state
    assert {"swd-num_slices", "knn-k", "adversarial-hidden", "mmd-scales", "sigreg-t_max"} <= {
        case.id.split("=")[0] for case in _REGULARIZER_CASES}


@pytest.mark.parametrize("regularizer, name, value", _REGULARIZER_CASES)
def test_bad_regularizer_options_get_an_error_naming_the_parameter(regularizer, name, value):
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        make_regularizer(regularizer, 3, **{name: value})


@pytest.mark.parametrize("owner, name, value", _bad_values("GaussianEmbedder", inspect.signature(GaussianEmbedder)))
def test_bad_estimator_parameters_get_an_error_naming_the_parameter_before_any_work(owner, name, value):
    params = {"max_epochs": 1, name: value}
    with pytest.raises((TypeError, ValueError), match=rf"\b{name}\b"):
        GaussianEmbedder(**params).fit(Z)


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
