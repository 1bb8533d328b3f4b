"""The on-disk cache of Monte Carlo nulls: files are reused across in-memory caches, rebuilt when broken,
keyed by everything that determines them, and never required (disabled or unwritable folder)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import pytest

import gaussify
from gaussify.metrics import _cache
from gaussify.metrics import divergence as dv
from gaussify.metrics import normality as nt
from gaussify.metrics.normality import energy_test

ARGS = ("energy", 30, 2, (), 40, 0)  # name, n, d, params, n_sim, seed of _null_distribution


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


def test_the_key_covers_n_d_params_n_sim_seed_and_versions(folder, simulations, monkeypatch):
    nt._null_distribution(*ARGS)
    for args in [("energy", 31, 2, (), 40, 0), ("energy", 30, 3, (), 40, 0), ("energy", 30, 2, (), 41, 0),
                 ("energy", 30, 2, (), 40, 1), ("bhep", 30, 2, (1.0,), 40, 0), ("bhep", 30, 2, (0.5,), 40, 0)]:
        nt._null_distribution(*args)
    assert len(simulations) == 7 and len(list(folder.glob("*.npy"))) == 7
    for module, version in [(gaussify, "0.0.0-other"), (np, "0.0.0-other")]:
        with monkeypatch.context() as patch:
            patch.setattr(module, "__version__", version)
            nt._null_distribution.cache_clear()
            nt._null_distribution(*ARGS)
    assert len(simulations) == 9 and len(list(folder.glob("*.npy"))) == 9


def test_an_empty_variable_disables_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(_cache.ENV_VAR, "")
    monkeypatch.chdir(tmp_path)
    calls = []
    for _ in range(2):
        _cache.cached_array("x", ("x",), (3,), lambda: calls.append(1) or np.arange(3.0))
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
        first = _cache.cached_array("x", ("x",), (3,), lambda: np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = _cache.cached_array("x", ("x",), (3,), lambda: np.arange(3.0))
    assert np.array_equal(first, second)


def test_concurrent_writers_leave_one_complete_file(folder):
    results, key = [], ("race",)

    def work():
        results.append(_cache.cached_array("race", key, (1000,), lambda: np.linspace(0.0, 1.0, 1000)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(np.array_equal(r, results[0]) for r in results)
    assert [p.name for p in folder.iterdir()] == [f"race-{_cache._digest(key)}.npy"]  # no temporary left


def test_the_knn_reference_is_one_file_per_size_whatever_the_random_state(folder):
    # a seed drawn from random_state=None used to key a new reference file at every call
    dv._gaussian_knn_reference.cache_clear()
    Z = np.random.default_rng(0).standard_normal((200, 2))
    values = {dv.kl_divergence(Z, random_state=state).value for state in (None, None, 0, 7)}
    assert len(values) == 1  # every row is queried at n = 200: random_state has nothing else to change
    assert len(list(folder.rglob("knn-reference-*.npy"))) == 1
    dv._gaussian_knn_reference.cache_clear()
