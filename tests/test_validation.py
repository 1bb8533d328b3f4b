"""Tests of gaussify._validation: one way to check a parameter, one message naming it, and the deprecated names
of renamed parameters."""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

from gaussify import metrics
from gaussify._validation import check_random_state
from gaussify.metrics.streaming import SlicedEppsPulley

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
