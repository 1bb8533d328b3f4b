"""The quality benchmark's --quick mode runs and writes a well-formed report (timings are not checked)."""

import json
import re

import numpy as np
import pytest

from gaussify.bench.quality import COLUMNS, at_levels, main, pareto_front


def test_pareto_front():
    # (cost, value): lower cost and higher value are better
    points = [(0.1, 0.5), (0.2, 0.9), (0.3, 0.8), (0.1, 0.5), (0.05, 0.2), (np.nan, 1.0), (0.2, 0.9)]
    assert pareto_front(points) == [True, True, False, True, True, False, True]
    assert pareto_front([]) == []


def test_accuracy_at_a_stated_gaussianity():
    def row(method, kl, knn, linear, runs):
        return {"dataset": "d", "dim": 2, "method": method, "kl": kl, "knn_accuracy": knn, "linear_accuracy": linear,
                "runs": [{"knn_accuracy": a, "linear_accuracy": b} for a, b in runs]}

    rows = [row("a", 0.05, 0.5, 0.7, [(0.4, 0.7), (0.6, 0.7)]), row("b", 0.2, 0.9, 0.6, [(0.9, 0.6)]),
            row("c", 0.3, 0.99, 0.99, [(0.99, 0.99)]), row("nan", float("nan"), 1.0, 1.0, [(1.0, 1.0)])]
    (entry,) = at_levels(rows, levels=(0.01, 0.1, 0.25))
    assert entry["5-NN at KL ≤ 0.01"] == "—"
    assert entry["5-NN at KL ≤ 0.10"] == "0.500 ± 0.141 (a, KL 0.050)"
    assert entry["5-NN at KL ≤ 0.25"] == "0.900 (b, KL 0.200)"  # c is not that Gaussian
    assert entry["linear at KL ≤ 0.25"].startswith("0.700 ± 0.000 (a,")


def test_quick_run_writes_a_well_formed_table(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "quality.md").read_text()
    assert (tmp_path / "quality_moons.png").stat().st_size > 1000
    assert "## Accuracy at a stated Gaussianity" in report and "## Pareto fronts" in report and "## moons" in report
    assert report.count("| moons | 2 |") == 2 and "Versions:" in report and "Machine:" in report
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
    summary = report.split("## Pareto fronts")[1].split("## moons")[0]
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


def test_high_preset_and_regularizer_sums():
    """--high: 16 and 32 dims, 3 seeds, the linear probe as the Pareto axis, levels 0.5 and 2 nats, its own files;
    --regularizers takes weighted sums and refuses unknown names."""
    from gaussify.bench.quality import _config, _parser

    parser = _parser()
    config = _config(parser.parse_args(["--high"]), parser)
    assert (config.dims, tuple(config.seeds), config.information, config.name) == (
        (16, 32), (0, 1, 2), "linear_accuracy", "quality_high")
    assert config.levels == (0.5, 2.0) and "mnist1d" in config.datasets and config.task_only
    config = _config(parser.parse_args(["--regularizers", "swd+0.1*placement", "knn"]), parser)
    assert list(config.regularizers) == ["swd+0.1*placement", "knn"] and config.name == "quality"
    with pytest.raises(SystemExit):
        parser.parse_args(["--regularizers", "vae"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--high"])


def test_parallel_splits_give_the_sequential_rows_and_input_noise_is_a_sweep_axis():
    """--n-jobs 2 fits the (data set, seed) splits in two processes: the same rows, in the same order, as one
    process; --input-noise crosses with the regularizers and names its rows."""
    from gaussify.bench.quality import _config, _parser, run

    parser = _parser()
    argv = ["--quick", "--seeds", "0", "1", "--input-noise", "0", "0.5"]
    sequential = run(_config(parser.parse_args(argv), parser), progress=False)
    parallel = run(_config(parser.parse_args([*argv, "--n-jobs", "2"]), parser), progress=False)

    def scores(rows):
        return [(r["method"], r["dim"], [{k: v for k, v in one.items() if k != "seconds"} for one in r["runs"]])
                for r in rows]

    assert scores(parallel) == scores(sequential)
    assert [r["method"] for r in sequential].count("gaussify swd, w=1, input noise 0.5") == 1
    assert all(r["seeds"] == 2 for r in sequential)
    for bad in (["--input-noise", "-1"], ["--n-jobs", "0"]):
        with pytest.raises(SystemExit):
            _config(parser.parse_args(bad), parser)
