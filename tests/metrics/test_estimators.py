"""The registry of shape estimators drives every list of them: kl_divergence's methods, KL_METHODS, the accuracy
suite's estimators and the method of each measured interval; a new estimator is one module and one registry line."""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest

from gaussify.bench import accuracy
from gaussify.metrics import KL_METHODS, kl_divergence, kl_method
from gaussify.metrics.estimators import REGISTRY
from gaussify.metrics.estimators.base import ShapeEstimator


@dataclass(frozen=True)
class _ToyParts:
    raw: float
    sd: float

    def note(self, n: int) -> str:
        return f"toy negentropy of {n} rows"

    def resampler(self, Y: np.ndarray, shared: bool, rng: np.random.Generator):
        return lambda counts, cov: self.raw


class _Toy(ShapeEstimator):
    """J read as k/100 nats, whatever the sample: enough to see which estimator ran, with which options."""

    name = "toy"
    options = ("k",)

    def __init__(self, k: int = 16) -> None:
        self.k = k

    @property
    def label(self) -> str:
        return "toy"

    def estimate(self, W: np.ndarray, rng: np.random.Generator) -> _ToyParts:
        return _ToyParts(self.k / 100.0, 0.0)


@pytest.fixture
def toy(monkeypatch):
    """The toy estimator as the module ``gaussify.metrics.estimators.toy``, registered by one registry line."""
    module = types.ModuleType("gaussify.metrics.estimators.toy")
    module.Toy = _Toy
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(REGISTRY.paths, "toy", "toy:Toy")
    return "toy"


def test_every_registered_estimator_is_a_method_of_kl_divergence():
    assert KL_METHODS == ("auto", *REGISTRY) and len(REGISTRY) >= 2
    Z = np.random.default_rng(0).uniform(-1.0, 1.0, (400, 3))
    for name in REGISTRY:
        cls = REGISTRY[name]
        assert issubclass(cls, ShapeEstimator) and cls.name == name and REGISTRY.class_name(name) == cls.__name__
        est = kl_divergence(Z, method=name)
        assert est.value == est.negentropy + est.placement and est.negentropy > 0.1  # a uniform cube's J is 0.5
    assert {kl_method(400, d) for d in (2, 64)} <= set(REGISTRY)


def test_the_accuracy_suite_compares_every_registered_estimator():
    names = accuracy.estimator_names()
    assert all(accuracy.method_label(name) in names for name in REGISTRY)
    assert accuracy.method_label("knn") == "kNN k=16 (method='knn')"  # the label of the committed results
    Z = np.random.default_rng(1).standard_normal((300, 2))
    estimates, _ = accuracy._estimates(Z, False, None, True, False)
    default = kl_method(*Z.shape)
    assert {accuracy.method_label(name) for name in REGISTRY if name != default} <= set(estimates)
    assert accuracy.method_label(default) not in estimates  # the default already is that method


def test_a_registered_estimator_is_a_method_everywhere(toy):
    Z = np.random.default_rng(2).standard_normal((300, 2))
    est = kl_divergence(Z, method=toy, k=30)
    assert est.raw_negentropy == 0.3 and est.value == 0.3 + est.placement  # its options come from kl_divergence
    assert est.note.startswith("toy negentropy of 300 rows")
    assert est.interval == (0.0, math.inf)  # the suite never measured it: no finite interval
    assert kl_divergence(Z, method=toy, k=30, ci=0.9, n_boot=20).ci[0] >= 0.3  # its own bootstrap replicates
    with pytest.raises(ValueError, match="'toy'"):
        kl_divergence(Z, method="flow")
    estimates, _ = accuracy._estimates(Z, False, None, True, False)
    assert estimates["toy (method='toy')"][0] == pytest.approx(0.16 + est.placement)
    assert "toy (method='toy')" in accuracy.estimator_names()
    rows = [{"estimator": "toy (method='toy')", "d": 2, "n": 300, "family": f"f{i}", "true_kl": 0.1 * i,
             "estimates": [0.1 * i + 0.01, 0.1 * i - 0.01]} for i in range(3)]
    assert accuracy.error_envelopes(rows, "toy (method='toy')")["dims"]["2"]["method"] == toy
