"""Tests of gaussify._validation: one way to check a parameter, one message naming it, and the deprecated names
of renamed parameters."""

from __future__ import annotations

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
