"""``gaussify evaluate``: the switch to streaming above the memory budget, what it says it streamed, its JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaussify.cli import NOT_STREAMED, STREAMED, app
from gaussify.io import table_header
from gaussify.metrics import evaluate_streaming

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A skewed 300 x 3 table as .npy, .csv and .parquet (the last two with a text label column)."""
    rng = np.random.default_rng(0)
    Z = rng.exponential(size=(300, 3)) @ np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]])
    folder = tmp_path_factory.mktemp("evaluate")
    np.save(folder / "z.npy", Z)
    frame = pd.DataFrame(Z, columns=["a", "b", "c"]).assign(label=[f"c{i % 3}" for i in range(300)])
    frame.to_csv(folder / "z.csv", index=False)
    frame.to_parquet(folder / "z.parquet", index=False)
    return folder, Z


def invoke(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def streamed(result) -> bool:
    return result.output.startswith("streaming")


def test_switches_to_streaming_above_the_memory_budget(data):
    """300 x 3 float64 is 7,200 bytes: in memory under the default budget, streamed under 0.005 MiB; --stream and
    --no-stream override the budget either way."""
    folder, _ = data
    source = folder / "z.npy"
    assert not streamed(default := invoke(source, "--tests", "none")) and "negentropy" in default.output
    small = invoke(source, "--memory-budget", 0.005)
    assert streamed(small) and "300 x 3 table takes 0.00687 MiB, over the --memory-budget of 0.005 MiB" in small.output
    assert f"computed from the stream: {STREAMED}" in small.output
    assert f"not computed, they need every row in memory (use --no-stream): {NOT_STREAMED}" in small.output
    assert "negentropy (shape)" not in small.output and "Mardia kurtosis" in small.output
    assert invoke(source, "--stream").output.startswith("streaming (--stream)")
    assert not streamed(invoke(source, "--no-stream", "--memory-budget", 0, "--tests", "none"))
    assert streamed(invoke(folder / "z.csv", "--labels", "label", "--memory-budget", 0.001))  # by file size


def test_streamed_json_equals_the_in_memory_placement(data, tmp_path):
    """--json writes StreamingResult.to_dict() with "mode": "streaming"; its placement KL equals the in-memory
    one to 1e-10, from .npy, .csv and .parquet alike (the label column left out)."""
    folder, Z = data
    assert invoke(folder / "z.npy", "--no-stream", "--tests", "none", "--json", tmp_path / "m.json").exit_code == 0
    in_memory = json.loads((tmp_path / "m.json").read_text())
    assert in_memory["mode"] == "in-memory"
    want = evaluate_streaming(Z).to_dict()
    for source, labels in (("z.npy", []), ("z.csv", ["--labels", "label"]), ("z.parquet", ["--labels", "label"])):
        result = invoke(folder / source, "--stream", "--json", tmp_path / "s.json", *labels)
        assert result.exit_code == 0, result.output
        got = json.loads((tmp_path / "s.json").read_text())
        assert got.pop("mode") == "streaming" and got.keys() == want.keys()
        assert got["n"] == 300 and got["d"] == 3
        assert got["placement_kl"] == pytest.approx(in_memory["kl"]["placement"], rel=1e-10)
        assert got["mardia_kurtosis"]["statistic"] == pytest.approx(want["mardia_kurtosis"]["statistic"], rel=1e-10)


def test_report_needs_in_memory_mode(data, tmp_path):
    result = invoke(data[0] / "z.npy", "--stream", "--report", tmp_path / "r.html")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "--report needs the in-memory evaluation" in result.stderr and not (tmp_path / "r.html").exists()


def test_table_header_reads_no_data(data):
    folder, _ = data
    assert table_header(folder / "z.npy") == (300, ["x0", "x1", "x2"])
    assert table_header(folder / "z.parquet", "label") == (300, ["a", "b", "c"])
    assert table_header(folder / "z.csv", "label") == (None, ["a", "b", "c"])
    with pytest.raises(ValueError, match="no column named 'y'"):
        table_header(folder / "z.csv", "y")
