"""The quality benchmark's --quick mode runs and writes a well-formed report (timings are not checked)."""

import json
import re

import numpy as np
import pytest

from gaussify.bench.quality import COLUMNS, main, pareto_front


def test_pareto_front():
    # (cost, value): lower cost and higher value are better
    points = [(0.1, 0.5), (0.2, 0.9), (0.3, 0.8), (0.1, 0.5), (0.05, 0.2), (np.nan, 1.0), (0.2, 0.9)]
    assert pareto_front(points) == [True, True, False, True, True, False, True]
    assert pareto_front([]) == []


def test_quick_run_writes_a_well_formed_table(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "quality.md").read_text()
    assert (tmp_path / "quality_moons.png").stat().st_size > 1000
    assert "## Summary" in report and "## moons" in report and "Versions:" in report and "Machine:" in report
    tables = [block.splitlines() for block in re.split(r"\n\s*\n", report) if block.startswith("| method")]
    assert len(tables) == 1
    header, rule, *rows = tables[0]
    assert header == "| " + " | ".join(COLUMNS) + " |"
    assert all(line.count("|") == len(COLUMNS) + 1 for line in [rule, *rows])
    methods = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert sum(m.startswith("**gaussify default") for m in methods) == 1
    assert any(m.startswith("t-SNE") for m in methods) and "PCA + quantile" in methods
    pareto = [row.rstrip(" |").endswith("✓") for row in rows]
    assert any(pareto)
    for row in rows:  # every score is a number in its range
        cells = [c.strip() for c in row.strip("|").split("|")]
        values = dict(zip(COLUMNS, cells))
        assert float(values["kl"]) >= 0 and 0 <= float(values["knn_accuracy"]) <= 1
        assert 0 <= float(values["min_pvalue"]) <= 1 and 0 <= float(values["trustworthiness"]) <= 1
    summary = report.split("## Summary")[1].split("## moons")[0]
    assert re.search(r"\| moons \| 2 \| (yes|no) \|", summary)
    assert "wrote" in capsys.readouterr().out
    runs = json.loads((tmp_path / "quality.json").read_text())  # the table's rows, with every seed's own scores
    assert [r["method"] for r in runs] == [m.strip("*") for m in methods]
    for r in runs:
        assert r["seeds"] == len(r["runs"]) == 1 and r["runs"][0]["seed"] == 0
        assert r["kl"] == r["runs"][0]["kl"] and r["pareto"] in ("✓", "")


def test_bad_arguments_exit():
    with pytest.raises(SystemExit):
        main(["--weights", "heavy"])
    with pytest.raises(SystemExit):
        main(["--datasets", "imagenet"])
