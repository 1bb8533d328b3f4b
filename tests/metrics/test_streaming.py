"""gaussify.metrics.streaming: chunked statistics equal the in-memory ones, for any chunking, merge order or source."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gaussify._validation import standardize_to_target
from gaussify.metrics import atoms, mardia_kurtosis, mardia_skewness, placement_kl
from gaussify.metrics.streaming import (MardiaMoments, MeanCov, RadiusHistogram, SlicedEppsPulley, Ties, all_reduce,
                                        evaluate_streaming, read_chunks)
from gaussify.regularizers.sigreg import epps_pulley_1d

REL = 1e-8


def skewed(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A correlated, skewed, heavy-tailed sample far from the origin (cancellation-prone moments)."""
    rng = np.random.default_rng(seed)
    E = rng.exponential(size=(n, d)) + 0.3 * rng.standard_t(5, size=(n, d))
    return E @ (rng.standard_normal((d, d)) + 2 * np.eye(d)) + 50.0


TARGET = (np.full(4, 49.0), np.diag([4.0, 9.0, 16.0, 25.0]) + 1.0)


@pytest.mark.parametrize("n", [12, 3000])
def test_matches_in_memory(n):
    """Mean, covariance, placement KL, Mardia b₁/b₂ with statistics and p-values (n < 20 takes the small-sample
    skewness correction), every slice's Epps–Pulley value and the radius histogram equal the in-memory
    computations on the same rows to 1e-8 relative."""
    X = skewed(n, 4)
    res = evaluate_streaming(X, TARGET, chunk_size=5, num_slices=16, radius_bins=7)
    np.testing.assert_allclose(res.mean, X.mean(axis=0), rtol=REL)
    np.testing.assert_allclose(res.cov, np.cov(X, rowvar=False), rtol=REL)
    assert res.placement_kl == pytest.approx(placement_kl(X, TARGET), rel=REL)
    for streamed, in_memory, moment in ((res.mardia_skewness, mardia_skewness(X), "b1"),
                                        (res.mardia_kurtosis, mardia_kurtosis(X), "b2")):
        assert streamed.details[moment] == pytest.approx(in_memory.details[moment], rel=REL)
        assert streamed.statistic == pytest.approx(in_memory.statistic, rel=REL)
        assert streamed.pvalue == pytest.approx(in_memory.pvalue, rel=REL, abs=1e-300)
        assert streamed.details.keys() == in_memory.details.keys()

    W = standardize_to_target(X, TARGET)
    slices = SlicedEppsPulley(4, TARGET, num_slices=16)
    reference = epps_pulley_1d(torch.from_numpy((W @ slices.directions).T.copy()))  # SIGReg's Epps–Pulley, torch
    assert res.epps_pulley["statistic"] == pytest.approx(float(reference.mean()), rel=REL)
    assert res.epps_pulley["max"] == pytest.approx(float(reference.max()), rel=REL)

    r2 = np.einsum("ij,ij->i", W, W)
    edges = np.concatenate([[0.0], res.radius["inner_edges"], [np.inf]])
    assert res.radius["counts"] == np.histogram(r2, edges)[0].tolist()
    assert res.radius["mean_sq_radius"] == pytest.approx(r2.mean(), rel=REL)
    assert res.radius["var_sq_radius"] == pytest.approx(r2.var(ddof=1), rel=REL)


def test_null_values_at_the_target():
    """On exact target samples the summaries sit at their null values: EP near null_mean, X² near its df."""
    rng = np.random.default_rng(1)
    mean, cov = TARGET
    X = rng.multivariate_normal(mean, cov, size=20_000)
    res = evaluate_streaming(X, TARGET, num_slices=32)
    assert res.epps_pulley["null_mean"] == pytest.approx(1.0524641547991607, rel=1e-12)  # SIGReg's null mean
    assert abs(res.epps_pulley["statistic"] - res.epps_pulley["null_mean"]) < 0.5  # sd ≈ 0.2 per mean of 32
    assert res.radius["pvalue"] > 1e-3 and res.mardia_kurtosis.pvalue > 1e-3
    assert res.placement_kl < 0.01


def test_chunk_size_does_not_matter():
    X = skewed(500, 3, seed=2)
    reference = evaluate_streaming(X, chunk_size=500).to_dict()
    for chunk_size in (1, 7, 64):
        result = evaluate_streaming(X, chunk_size=chunk_size).to_dict()
        assert result.keys() == reference.keys()
        np.testing.assert_allclose(result["cov"], reference["cov"], rtol=1e-10)
        for key in ("mardia_skewness", "mardia_kurtosis"):
            assert result[key]["statistic"] == pytest.approx(reference[key]["statistic"], rel=1e-10)
        assert result["epps_pulley"]["statistic"] == pytest.approx(reference["epps_pulley"]["statistic"], rel=1e-10)
        assert result["radius"]["counts"] == reference["radius"]["counts"]


def _accumulators(X: np.ndarray) -> list:
    mean, cov = X.mean(axis=0), np.cov(X, rowvar=False, ddof=0)
    d = X.shape[1]
    return [MeanCov(d), MardiaMoments(mean, cov), SlicedEppsPulley(d, num_slices=8), RadiusHistogram(d, bins=5)]


def _state(acc) -> list:
    out = acc.compute()
    return list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]


def test_merge_of_halves_equals_the_whole():
    """Each accumulator: (first half).merge(second half) == all rows, and merging an empty one changes nothing."""
    X = skewed(301, 3, seed=3)
    whole, first, second, empty = (_accumulators(X) for _ in range(4))
    for w, a, b, e in zip(whole, first, second, empty):
        w.update(X)
        a.update(X[:120]).merge(b.update(X[120:])).merge(e)
        assert a.n == w.n == 301
        for got, want in zip(_state(a), _state(w)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_merge_refuses_other_types_and_settings():
    with pytest.raises(TypeError, match="cannot merge RadiusHistogram into MeanCov"):
        MeanCov(2).merge(RadiusHistogram(2))
    with pytest.raises(ValueError, match="different settings"):
        SlicedEppsPulley(2, random_state=0).merge(SlicedEppsPulley(2, random_state=1))
    with pytest.raises(ValueError, match="different settings"):
        MeanCov(2).merge(MeanCov(3))


def test_all_reduce_without_process_group_is_identity():
    acc = MeanCov(2).update(np.ones((3, 2)))
    assert all_reduce(acc) is acc


def test_sources(tmp_path):
    """Arrays, tensors, .npy (C and Fortran order, memory-mapped per chunk), parquet row groups and csv chunks
    with a column selection, lists of chunks and callables give identical results."""
    X = skewed(230, 3, seed=4)
    reference = evaluate_streaming(X, chunk_size=230)
    np.save(tmp_path / "c.npy", X.astype(np.float32))
    np.save(tmp_path / "f.npy", np.asfortranarray(X.astype(np.float32)))
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "label": np.arange(230).astype(str), "c": X[:, 2]})
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=50)
    table.to_pandas().to_csv(tmp_path / "x.csv", index=False)
    X32 = X.astype(np.float32).astype(np.float64)
    sources = {
        "tensor": (torch.from_numpy(X), {}),
        "list": ([X[:100], X[100:]], {}),
        "callable": (lambda: (X[s:s + 33] for s in range(0, 230, 33)), {}),
        "parquet": (tmp_path / "x.parquet", {"columns": ["a", "b", "c"]}),
        "csv": (tmp_path / "x.csv", {"columns": ["a", "b", "c"]}),
        "npy": (str(tmp_path / "c.npy"), {}),
        "npy-fortran": (tmp_path / "f.npy", {}),
    }
    for name, (source, kwargs) in sources.items():
        want = evaluate_streaming(X32, chunk_size=230) if name.startswith("npy") else reference
        got = evaluate_streaming(source, chunk_size=40, **kwargs)
        assert got.n == 230, name
        np.testing.assert_allclose(got.cov, want.cov, rtol=1e-10, err_msg=name)
        assert got.mardia_skewness.statistic == pytest.approx(want.mardia_skewness.statistic, rel=1e-10), name


def test_npy_is_read_as_float32_memmaps_of_one_chunk_each(tmp_path):
    X = skewed(100, 3).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    chunks = list(read_chunks(tmp_path / "x.npy", 30)())
    assert [len(c) for c in chunks] == [30, 30, 30, 10]
    assert all(isinstance(c, np.memmap) and c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), X)


@pytest.mark.parametrize("source,kwargs,error,match", [
    (iter([np.ones((5, 2))]), {}, TypeError, "one-shot iterator"),
    ([np.zeros((0, 2))], {}, ValueError, "no rows"),
    ([np.random.default_rng(0).normal(size=(9, 2)), np.ones((3, 3))], {}, ValueError, "3 columns, expected 2"),
    ([np.array([[0.0, math.nan], [1.0, 2.0]])], {}, ValueError, "NaN or Inf"),
    (np.random.default_rng(0).normal(size=(4, 3)), {}, ValueError, "n >= d \\+ 2"),
    (np.c_[np.arange(10.0), np.ones(10)], {}, ValueError, "constant"),
    (np.c_[np.arange(10.0), 2 * np.arange(10.0) + 1e-9 * np.random.default_rng(0).normal(size=10)], {}, ValueError,
     "singular"),
    (np.ones((5, 2)), {"chunk_size": 0}, ValueError, "chunk_size"),
    (np.ones((5, 2)), {"columns": ["a"]}, ValueError, "parquet"),
    (42, {}, TypeError, "source must be"),
])
def test_clear_errors(source, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate_streaming(source, **kwargs)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        evaluate_streaming(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("a\n1\n")
    with pytest.raises(ValueError, match="unsupported file type .txt"):
        evaluate_streaming(tmp_path / "x.txt")
    (tmp_path / "s.csv").write_text("a,s\n1.0,x\n2.0,y\n")
    with pytest.raises(ValueError, match=r"\['s'\] are not numeric"):
        evaluate_streaming(tmp_path / "s.csv")
    pq.write_table(pa.table({"a": [1.0, 2.0], "s": ["x", "y"]}), tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"\['s'\] are not numeric"):
        evaluate_streaming(tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"no column\(s\) \['z'\]"):
        evaluate_streaming(tmp_path / "s.parquet", columns=["z"])


def test_to_dict_is_json_ready():
    import json

    res = evaluate_streaming(skewed(50, 2), skewness=False)
    out = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert out["mardia_skewness"] is None and out["n"] == 50 and len(out["cov"]) == 2


def test_str_is_readable_far_from_the_target():
    """Underflowed p-values print as <1e-300, large values in exponent notation, never as long fixed-point numbers."""
    text = str(evaluate_streaming(skewed(20_000, 3) * 1e4))
    assert text.startswith("Gaussianity of a 20000 x 3 sample, streamed in two passes:")
    assert text.count("<1e-300") == 3 and " 0\n" not in text and not text.endswith(" 0")
    assert "e+11 nats" in text and re.search(r"\d{6}", text) is None


def test_continuity_check_agrees_with_the_in_memory_rule():
    rng = np.random.default_rng(30)
    lattice = rng.integers(-3, 4, (3000, 2)).astype(np.float64)
    relu = rng.standard_normal((5000, 3))
    relu[:, 2] = np.maximum(relu[:, 2], 0.0)
    few = rng.standard_normal((5000, 3))
    few[:20] = few[-20:]  # 0.4% repeated rows: below ATOM_FRACTION
    for Z in (lattice, relu, few, rng.standard_normal((4000, 4)).astype(np.float32)):
        result = evaluate_streaming(Z, chunk_size=700)
        assert result.atoms == atoms(Z)
    assert "KL = ∞" in str(evaluate_streaming(lattice)) and evaluate_streaming(few).to_dict()["atoms"] is None


def test_repeated_rows_beyond_the_sketch_are_estimated():
    # 3000 of 100,000 rows repeated, 97,000 distinct rows > a sketch of 8192: the distinct sample's ratio estimate
    # has sd ≈ √(0.03 · 0.97 / 8192) · n ≈ 190 rows
    rng = np.random.default_rng(31)
    Z = rng.standard_normal((100_000, 3))
    Z[:3000] = Z[-3000:]
    ties = Ties(3, sketch=8192)
    for start in range(0, len(Z), 10_000):
        ties.update(Z[start:start + 10_000])
    assert abs(ties.repeated_rows() - 3000) < 800
    halves = Ties(3, sketch=8192).update(Z[:50_000]).merge(Ties(3, sketch=8192).update(Z[50_000:]))
    assert halves.repeated_rows() == ties.repeated_rows()
