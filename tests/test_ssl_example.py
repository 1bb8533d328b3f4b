"""examples/ssl_digits.py --quick: the table it writes, and SIGReg keeping the embedding from collapsing."""

from __future__ import annotations

import pytest

METHODS = ["prediction only", "VICReg var + cov", "SIGReg, LeJEPA λ = 0.05", "gaussify pursued-swd+placement+knn × 3",
           "gaussify pursued-swd+placement+knn × 3, clean too"]


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("ssl_digits")


def test_quick_run_writes_the_table_and_the_penalties_beat_collapse(tmp_path, example):
    """The quick run (d = 16, 150 steps) writes one table of the five methods. gaussify's default keeps the
    embedding from collapsing: its probe gap over the prediction loss alone measured 0.83 at seed 0 (0.30 is the
    margin), and both its variants are less far from Gaussian on held-out images than the other three (KL 6.6 and 7.9
    against 42–95)."""
    out = tmp_path / "ssl.md"
    results = example.main(["--quick", "--out", str(out)])
    assert list(results) == [16] and list(results[16]) == METHODS
    lines = out.read_text().splitlines()
    assert lines[0] == "# Self-supervised digits (quick size)"
    assert any(line.startswith("- Machine:") for line in lines)
    assert any(line.startswith("- Versions:") for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")]
    assert columns[:5] == ["method", "probe accuracy", "probe, standardised", "RankMe", "held-out KL [95% CI]"]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[header + 2:header + 7]]
    assert [row[0] for row in rows] == METHODS and all(len(row) == len(columns) for row in rows)
    runs = {name: runs[0] for name, runs in results[16].items()}
    for r in runs.values():
        low, high = r["KL interval"]
        assert low <= r["KL"] <= high
        assert 1.0 <= r["RankMe"] <= 16.0 and r["placement"] >= 0.0
    collapse, ours = runs["prediction only"], runs["gaussify pursued-swd+placement+knn × 3"]
    assert ours["probe accuracy"] - collapse["probe accuracy"] >= 0.30
    assert ours["RankMe"] > collapse["RankMe"]
    assert max(runs[name]["KL"] for name in METHODS[3:]) < min(runs[name]["KL"] for name in METHODS[:3])
