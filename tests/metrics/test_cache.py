"""The on-disk cache of Monte Carlo nulls: files are reused across in-memory caches, rebuilt when broken,
keyed by everything that determines them (the code of the statistic included, through its stored fingerprint),
and never required (disabled or unwritable folder)."""

from __future__ import annotations

import json
import os
import threading
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import scipy

import gaussify
from gaussify.metrics import _cache
from gaussify.metrics import batch as bt
from gaussify.metrics import divergence as dv
from gaussify.metrics.estimators import knn as kn
from gaussify.metrics import normality as nt
from gaussify.metrics.normality import energy_test

ARGS = ("energy", 30, 2, (), 40, 0)  # name, n, d, params, n_sim, seed of _null_distribution
FINGERPRINTS = _cache.stored_fingerprints()
ANY = "normality-energy"  # a stored definition, for the tests of the mechanism
UPDATE = "GAUSSIFY_UPDATE_FINGERPRINTS"
"""Set to 1 to rewrite the stored fingerprints from the code (after a deliberate change of a null's definition)."""
_PARAMS = {"bhep": [(1.0,)], "radius": [(True,), (False,)]}
"""The parameters a normality null is fingerprinted at (every value of a discrete one); () for the others."""


def _normality_null(name: str) -> np.ndarray:
    return np.concatenate([nt._simulate_null(name, 12, 2, params, 16, 0) for params in _PARAMS.get(name, [()])])


SMALL_NULLS = {
    **{f"normality-{name}": partial(_normality_null, name) for name in nt._NULLS},
    **{f"batch-{statistic}": partial(bt._simulate_batch_null, statistic, 16, 2, 8, 16)
       for statistic in bt.BATCH_STATISTICS},
    "knn-reference": partial(kn._simulate_knn_reference, 60, 2, 16, 10, 0, 2, 1),
    "bound-ica": partial(dv._shape_null.__wrapped__, 12, 2),
    "bound-sliced": partial(dv._sliced_null.__wrapped__, 12),
    "bound-zca": partial(dv._zca_null.__wrapped__, 12, 2),
}
"""Every null definition the cache keys, as a small fixed-seed null computed by the code (no disk cache)."""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV_VAR, str(tmp_path))
    nt._null_distribution.cache_clear()
    yield tmp_path / "monte-carlo"
    nt._null_distribution.cache_clear()


@pytest.fixture
def simulations(monkeypatch):
    calls = []
    simulate = nt._simulate_null

    def counting(*args):
        calls.append(args)
        return simulate(*args)

    monkeypatch.setattr(nt, "_simulate_null", counting)
    return calls


def test_a_fresh_process_reads_the_null_from_disk_without_simulating(folder, simulations):
    X = np.random.default_rng(0).standard_normal((30, 2))
    first = energy_test(X, n_sim=40)
    assert len(simulations) == 1 and len(list(folder.glob("energy-n30-d2-*.npy"))) == 1
    null = nt._null_distribution(*ARGS).copy()
    nt._null_distribution.cache_clear()  # what a new process starts with
    assert np.array_equal(nt._null_distribution(*ARGS), null)
    assert energy_test(X, n_sim=40) == first and len(simulations) == 1
    assert not nt._null_distribution(*ARGS).flags.writeable


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape", "object array"])
def test_a_broken_file_is_recomputed_and_overwritten(folder, simulations, damage):
    null = nt._null_distribution(*ARGS).copy()
    (path,) = folder.glob("energy-*.npy")
    if damage == "garbage":
        path.write_bytes(b"not a numpy file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "wrong shape":
        np.save(path, np.zeros(7))
    else:
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    nt._null_distribution.cache_clear()
    assert np.array_equal(nt._null_distribution(*ARGS), null) and len(simulations) == 2
    assert np.array_equal(np.load(path, allow_pickle=False), null)


def test_the_key_covers_n_d_params_n_sim_seed_definition_and_versions(folder, simulations, monkeypatch):
    nt._null_distribution(*ARGS)
    for args in [("energy", 31, 2, (), 40, 0), ("energy", 30, 3, (), 40, 0), ("energy", 30, 2, (), 41, 0),
                 ("energy", 30, 2, (), 40, 1), ("bhep", 30, 2, (1.0,), 40, 0), ("bhep", 30, 2, (0.5,), 40, 0)]:
        nt._null_distribution(*args)
    assert len(simulations) == 7 and len(list(folder.glob("*.npy"))) == 7
    for module, version in [(gaussify, "0.0.0-other"), (np, "0.0.0-other"), (scipy, "0.0.0-other")]:
        with monkeypatch.context() as patch:
            patch.setattr(module, "__version__", version)
            nt._null_distribution.cache_clear()
            nt._null_distribution(*ARGS)
    assert len(simulations) == 10 and len(list(folder.glob("*.npy"))) == 10
    with monkeypatch.context() as patch:  # a new stored fingerprint of the statistic: a new key
        patch.setattr(_cache, "stored_fingerprints", lambda: {**FINGERPRINTS, "normality-energy": [0.0]})
        nt._null_distribution.cache_clear()
        nt._null_distribution(*ARGS)
    assert len(simulations) == 11 and len(list(folder.glob("*.npy"))) == 11
    nt._null_distribution.cache_clear()
    nt._null_distribution(*ARGS)  # the stored fingerprint again: the first file
    assert len(simulations) == 11


def test_an_empty_variable_disables_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV_VAR, "")
    monkeypatch.chdir(tmp_path)
    calls = []
    for _ in range(2):
        _cache.cached_array("x", ("x",), (3,), lambda: calls.append(1) or np.arange(3.0), definition=ANY)
    assert _cache.cache_dir() is None and len(calls) == 2 and not any(tmp_path.iterdir())


def test_the_default_folder_is_the_user_cache(monkeypatch):
    monkeypatch.delenv(_cache.ENV_VAR)
    assert _cache.cache_dir() == Path(platformdirs.user_cache_dir("gaussify", appauthor=False)) / "monte-carlo"


def test_an_unwritable_folder_computes_and_warns_once(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # the cache folder would be inside a regular file: fails even as root
    monkeypatch.setenv(_cache.ENV_VAR, str(blocker))
    monkeypatch.setattr(_cache, "_WARNED", set())
    with pytest.warns(UserWarning, match="cannot write its Monte Carlo cache"):
        first = _cache.cached_array("x", ("x",), (3,), lambda: np.arange(3.0), definition=ANY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = _cache.cached_array("x", ("x",), (3,), lambda: np.arange(3.0), definition=ANY)
    assert np.array_equal(first, second)


def test_concurrent_writers_leave_one_complete_file(folder):
    results, key = [], ("race",)

    def work():
        results.append(_cache.cached_array("race", key, (1000,), lambda: np.linspace(0.0, 1.0, 1000), definition=ANY))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(np.array_equal(r, results[0]) for r in results)
    assert [p.name for p in folder.iterdir()] == [f"race-{_cache._digest(key, ANY)}.npy"]  # no temporary left


def test_the_knn_reference_is_one_file_per_size_whatever_the_random_state(folder):
    # a seed drawn from random_state=None used to key a new reference file at every call
    kn._gaussian_knn_reference.cache_clear()
    Z = np.random.default_rng(0).standard_normal((200, 2))
    values = {dv.kl_divergence(Z, random_state=state).value for state in (None, None, 0, 7)}
    assert len(values) == 1  # every row is queried at n = 200: random_state has nothing else to change
    assert len(list(folder.rglob("knn-reference-*.npy"))) == 1
    kn._gaussian_knn_reference.cache_clear()


def _recomputed(monkeypatch) -> dict[str, list[float]]:
    monkeypatch.setenv(_cache.ENV_VAR, "")  # computed by the code, never read from a file
    return {name: _cache.fingerprint(compute()) for name, compute in SMALL_NULLS.items()}


def test_every_definition_has_a_stored_fingerprint_that_the_code_recomputes(monkeypatch):
    """A changed statistic changes its small null: this fails until its stored fingerprint, part of the cache key,
    is updated (``GAUSSIFY_UPDATE_FINGERPRINTS=1``), so no file of the old code is served. The tolerance covers
    BLAS and float32 (batch nulls) rounding across machines, far below what a changed definition moves."""
    got = _recomputed(monkeypatch)
    if os.environ.get(UPDATE) == "1":
        lines = [f"  {json.dumps(name)}: {json.dumps(values)}" for name, values in sorted(got.items())]
        _cache.FINGERPRINTS.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
        pytest.skip(f"rewrote {_cache.FINGERPRINTS}")
    assert sorted(FINGERPRINTS) == sorted(got), "a definition without a small null here, or the other way round"
    changed = [name for name in got if not np.allclose(got[name], FINGERPRINTS[name], rtol=1e-5, atol=1e-9)]
    assert not changed, (f"the nulls of {changed} no longer match their stored fingerprints: if the change is "
                         f"deliberate, run this test with {UPDATE}=1 (the new fingerprints key new cache files)")


def test_each_kind_of_null_is_cached_under_its_definition_and_an_unknown_one_is_refused(folder):
    nt._null_distribution("radius", 12, 2, (True,), 16, 0)
    bt._batch_null.cache_clear()
    bt._batch_null("swd", 16, 2, 8, 16)
    dv._zca_null.cache_clear()
    dv._zca_null(12, 2)
    labels = {path.name.rpartition("-")[0] for path in folder.iterdir()}
    assert labels == {"radius-n12-d2", "batch-swd-n16-d2", "bound-zca-12-2"}
    with pytest.raises(KeyError, match="no stored fingerprint for the null definition 'normality-new'"):
        _cache.cached_array("new", ("new",), (3,), lambda: np.zeros(3), definition="normality-new")
    bt._batch_null.cache_clear()
    dv._zca_null.cache_clear()


def test_a_changed_statistic_fails_the_fingerprint_and_its_new_one_misses_the_cache(folder, simulations,
                                                                                     monkeypatch):
    old = nt._null_distribution(*ARGS).copy()
    energy = nt._NULLS["energy"]
    changed = nt._Null("energy", lambda X: 1.01 * energy.statistic(X))  # an edit of the statistic's code
    monkeypatch.setitem(nt._NULLS, "energy", changed)
    with monkeypatch.context() as patch:
        refingerprinted = _recomputed(patch)["normality-energy"]
    assert not np.allclose(refingerprinted, FINGERPRINTS["normality-energy"], rtol=1e-5, atol=1e-9)
    monkeypatch.setattr(_cache, "stored_fingerprints", lambda: {**FINGERPRINTS, "normality-energy": refingerprinted})
    nt._null_distribution.cache_clear()
    new = nt._null_distribution(*ARGS)
    assert simulations.count(ARGS) == 2 and len(list(folder.glob("energy-*.npy"))) == 2
    np.testing.assert_allclose(new, 1.01 * old, rtol=1e-12)
