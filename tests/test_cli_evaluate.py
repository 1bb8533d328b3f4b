"""``gaussify evaluate``: the switch to streaming above the memory budget, what it says it streamed, its JSON,
and ``--target`` from a .json, a .npz or a model folder, with one-line errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaussify.cli import NOT_STREAMED, STREAMED, app
from gaussify.io import read_target, table_header
from gaussify.model_folder import embedder_target
from gaussify.metrics import evaluate_streaming, placement_kl

runner = CliRunner()
MEAN = np.array([0.5, -1.0, 2.0])
COV = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A skewed 300 x 3 table as .npy, .csv and .parquet (the last two with a text label column), and targets."""
    rng = np.random.default_rng(0)
    Z = rng.exponential(size=(300, 3)) @ np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]])
    folder = tmp_path_factory.mktemp("evaluate")
    np.save(folder / "z.npy", Z)
    frame = pd.DataFrame(Z, columns=["a", "b", "c"]).assign(label=[f"c{i % 3}" for i in range(300)])
    frame.to_csv(folder / "z.csv", index=False)
    frame.to_parquet(folder / "z.parquet", index=False)
    (folder / "target.json").write_text(json.dumps({"mean": MEAN.tolist(), "cov": COV.tolist()}))
    np.savez(folder / "target.npz", mean=MEAN, cov=COV)
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
        result = invoke(folder / source, "--stream", "--json", tmp_path / "s.json", "--overwrite", *labels)
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


@pytest.mark.parametrize("name", ["target.json", "target.npz"])
def test_target_file_reaches_both_modes(data, tmp_path, name):
    folder, Z = data
    want = placement_kl(Z, (MEAN, COV))
    assert want > 1.0  # far from N(0, I), so a target that got lost would show
    for mode in ("--stream", "--no-stream"):
        result = invoke(folder / "z.npy", mode, "--tests", "none", "--target", folder / name, "--json",
                        tmp_path / f"r{mode}.json")
        assert result.exit_code == 0, result.output
        assert f"target: the Gaussian in {folder / name}" in result.output
        content = json.loads((tmp_path / f"r{mode}.json").read_text())
        got = content["placement_kl"] if mode == "--stream" else content["kl"]["placement"]
        assert got == pytest.approx(want, rel=1e-10)


def test_model_folder_is_the_standard_normal_of_its_dimension(data, tmp_path):
    from gaussify import GaussianEmbedder

    rng = np.random.default_rng(1)
    GaussianEmbedder(2, max_epochs=1, random_state=0).fit(rng.normal(size=(40, 4))).save(tmp_path / "model")
    mean, cov = embedder_target(tmp_path / "model", 2)
    np.testing.assert_array_equal(mean, np.zeros(2))
    np.testing.assert_array_equal(cov, np.eye(2))
    np.save(tmp_path / "z2.npy", data[1][:, :2])
    assert invoke(tmp_path / "z2.npy", "--stream", "--target", tmp_path / "model").exit_code == 0
    wrong = invoke(data[0] / "z.npy", "--stream", "--target", tmp_path / "model")
    assert wrong.exit_code == 2 and f"{tmp_path / 'model'}: target has mean (2,)" in wrong.stderr


@pytest.mark.parametrize("content, message", [
    ({"mean": [0.0, 0.0], "cov": np.eye(2).tolist()}, "target has mean (2,) and cov (2, 2); the sample has "
                                                     "dimension 3"),
    ({"mean": [0.0] * 3, "cov": (-np.eye(3)).tolist()}, "target cov must be positive definite"),
    ({"mean": [0.0] * 3, "cov": [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}, "target cov must be symmetric"),
    ({"mean": [0.0] * 3}, "no cov; expected 'mean' (length 3) and 'cov' (3 x 3)"),
    ([1, 2, 3], "no mean and no cov; expected 'mean' (length 3) and 'cov' (3 x 3)"),
])
def test_bad_target_is_one_line_naming_the_file(data, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    for mode in ("--stream", "--no-stream"):
        result = invoke(data[0] / "z.npy", mode, "--target", path)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"gaussify: error: {path}: {message}\n"


def test_target_file_errors(data, tmp_path):
    (tmp_path / "t.txt").write_text("1")
    with pytest.raises(ValueError, match=r"t\.txt: unsupported target file"):
        read_target(tmp_path / "t.txt", 2)
    with pytest.raises(ValueError, match="no config.json, so not a model folder"):
        embedder_target(tmp_path, 2)
    with pytest.raises(ValueError, match="is a folder, not a target file"):
        read_target(tmp_path, 2)
    result = invoke(data[0] / "z.npy", "--stream", "--target", tmp_path)
    assert result.exit_code == 2 and result.stderr.startswith(
        f"gaussify: error: {tmp_path}: no config.json, so not a model folder")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_target(tmp_path / "missing.json", 2)


def test_table_header_reads_no_data(data):
    folder, _ = data
    assert table_header(folder / "z.npy") == (300, ["x0", "x1", "x2"])
    assert table_header(folder / "z.parquet", "label") == (300, ["a", "b", "c"])
    assert table_header(folder / "z.csv", "label") == (None, ["a", "b", "c"])
    with pytest.raises(ValueError, match="no column named 'y'"):
        table_header(folder / "z.csv", "y")
