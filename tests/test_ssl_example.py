"""examples/ssl_digits.py --quick: the table it writes, and SIGReg keeping the embedding from collapsing."""

from __future__ import annotations

import pytest

METHODS = ["prediction only", "VICReg var + cov", "gaussify SIGReg × 30"]


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("ssl_digits")


def test_quick_run_writes_the_table_and_sigreg_beats_collapse(tmp_path, example):
    """Over seeds 0–4 the quick run's probe gap SIGReg − prediction only measured 0.52–0.64 (mean 0.59): 0.30 (the
    issue's acceptance margin at the default size) is far below its spread."""
    out = tmp_path / "ssl.md"
    results = example.main(["--quick", "--seed", "0", "--out", str(out)])
    assert list(results) == METHODS
    lines = out.read_text().splitlines()
    assert lines[0] == "# Self-supervised digits (quick size)"
    assert any(line.startswith("- Machine:") for line in lines)
    assert any(line.startswith("- Versions:") for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    columns = [cell.strip() for cell in lines[header].strip("|").split("|")]
    assert columns[:4] == ["method", "probe accuracy", "probe, standardised", "RankMe"]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[header + 2:header + 5]]
    assert [row[0] for row in rows] == METHODS and all(len(row) == len(columns) for row in rows)
    for r in results.values():
        low, high = r["KL interval"]
        assert low <= r["KL"] <= high
        assert 1.0 <= r["RankMe"] <= 16.0 and 0.0 < r["batch p"] <= 1.0
    collapse, sigreg = results["prediction only"], results["gaussify SIGReg × 30"]
    assert sigreg["probe accuracy"] - collapse["probe accuracy"] >= 0.30
    assert sigreg["RankMe"] > collapse["RankMe"]
