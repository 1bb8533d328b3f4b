"""The speed benchmark runs end to end in quick mode and writes a well-formed report (no timing assertions)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("torch")

from gaussify.bench import speed  # noqa: E402
from gaussify.regularizers import REGISTRY  # noqa: E402

METRICS = ("mardia_skewness", "mardia_kurtosis", "henze_zirkler", "energy", "epps_pulley", "doornik_hansen",
           "coordinates(shapiro)", "coordinates(dagostino)", "mahalanobis_radius", "kl_divergence", "t-SNE")


def _table(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and body rows of the markdown table under the ``## title`` heading."""
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert set("".join(cells[1])) <= set("-: "), "second line must be the alignment row"
    assert all(len(row) == len(cells[0]) for row in cells), "ragged table"
    return cells[0], cells[2:]


def _positive_or_dash(cell: str, peer: str) -> None:
    if cell == "—":
        return
    value = float(cell)
    assert math.isfinite(value) and value > 0, (cell, peer)


def test_quick_report(tmp_path):
    assert speed.main(["--quick", "--repeats", "1", "--threads", "1", "--device", "cpu", "--no-progress",
                       "--out", str(tmp_path)]) == 0
    text = (tmp_path / "speed.md").read_text(encoding="utf-8")
    assert (tmp_path / "speed_scaling.png").stat().st_size > 1000
    assert text.startswith("# gaussify speed benchmark")
    for key in ("- Date:", "- Machine:", "torch ", "numpy ", "Protocol:"):
        assert key in text

    header, rows = _table(text, "Regularizers")
    col = {name: header.index(name) for name in ("regularizer", "n", "d", "gaussify (ms)", "peer", "ratio")}
    points = {(int(n), int(d)) for n, d in speed.QUICK_REG_GRID}
    for name in REGISTRY:  # one row per (regularizer, grid point, peer); every regularizer at every point
        mine = [r for r in rows if r[col["regularizer"]] == name]
        assert {(int(r[col["n"]]), int(r[col["d"]])) for r in mine} == points, name
    for r in rows:
        assert float(r[col["gaussify (ms)"]]) > 0
        _positive_or_dash(r[col["ratio"]], r[col["peer"]])
        assert (r[col["ratio"]] == "—") == (r[col["peer"]] == "—"), "a peer that is installed must be timed"
    peers = {r[col["regularizer"]]: r[col["peer"]] for r in rows}
    assert peers["swd"].startswith("POT") and peers["sigreg"].startswith("jepa") and peers["kl"] == "—"

    header, rows = _table(text, "Metrics")
    col = {name: header.index(name) for name in ("metric", "gaussify (ms)", "gaussify peak (MiB)", "peer", "ratio")}
    assert {r[col["metric"]] for r in rows} == set(METRICS)
    for r in rows:
        assert float(r[col["gaussify (ms)"]]) > 0 and float(r[col["gaussify peak (MiB)"]]) >= 0
        _positive_or_dash(r[col["ratio"]], r[col["peer"]])

    header, rows = _table(text, "How the cost grows")
    assert {r[header.index("method")] for r in rows} >= set(REGISTRY) | set(METRICS)
    header, rows = _table(text, "Acceptance")
    assert {r[header.index("verdict")] for r in rows} <= {"pass", "FAIL", "no peer", "peer not run", "not measured"}


def test_gpu_grid_study_runs_on_the_cpu_and_writes_its_own_file(tmp_path):
    assert {n for n, _ in speed.GPU_REG_GRID} >= {256, 8192} and {d for _, d in speed.GPU_REG_GRID} >= {64, 2048}
    assert (speed.plan(False, ("regularizers",), gpu_grid=True)
            == [("regularizers", n, d) for n, d in speed.GPU_REG_GRID])
    assert speed.plan(False, ("regularizers",)) == [("regularizers", n, d) for n, d in speed.REG_GRID]
    assert speed.main(["--quick", "--gpu-grid", "--repeats", "1", "--threads", "1", "--device", "cpu",
                       "--no-progress", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "speed_gpu.md").read_text(encoding="utf-8")
    assert (tmp_path / "speed_gpu_scaling.png").stat().st_size > 1000 and not (tmp_path / "speed.md").exists()
    header, rows = _table(text, "Regularizers")
    assert {r[header.index("regularizer")] for r in rows} == set(REGISTRY)
    assert "## Metrics" not in text


def test_missing_peer_is_reported(monkeypatch):
    real = speed._optional
    monkeypatch.setattr(speed, "_optional", lambda m: None if m in ("geomloss", "ot") else real(m))
    monkeypatch.setattr(speed, "QUICK_REG_GRID", [(64, 8)])
    rows = speed.run(True, repeats=1, device="cpu", sections=("regularizers",), threads=1, progress=False)
    swd = [r for r in rows if r["method"] == "swd"]
    assert swd and all(r["ratio"] is None and "peer not installed" in r["note"] for r in swd)
    assert any(r["method"] == "sigreg" and r["ratio"] and r["ratio"] > 0 for r in rows)
    assert "peer not installed" in speed.markdown(rows)


def test_fit_exponents_recovers_powers():
    rows = [{"section": "regularizer", "method": "m", "n": n, "d": d, "ours_s": 1e-9 * n**2 * d,
             "peer": "p", "peer_s": 1e-9 * n * d**0.5}
            for n, d in [(100, 4), (200, 4), (400, 4), (200, 16)]]
    fits = {f["implementation"]: f for f in speed.fit_exponents(rows)}
    assert fits["gaussify"]["n_exp"] == pytest.approx(2.0) and fits["gaussify"]["d_exp"] == pytest.approx(1.0)
    assert fits["p"]["n_exp"] == pytest.approx(1.0) and fits["p"]["d_exp"] == pytest.approx(0.5)


def test_bad_arguments():
    with pytest.raises(SystemExit):
        speed.main(["--repeats", "0"])
