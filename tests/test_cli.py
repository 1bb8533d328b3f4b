"""The command line: round trips through every file format, reports, and one-line errors with
exit status 2 for every user mistake."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaussify.cli import app
from gaussify.io import atomic_directory, read_table, write_table, write_text_atomic

runner = CliRunner()
FAST = ["--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=200)
    X = rng.normal(size=(200, 5)) + 3.0 * np.eye(5)[y]
    folder = tmp_path_factory.mktemp("data")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]).assign(label=[f"c{v}" for v in y])
    frame.to_csv(folder / "train.csv", index=False)
    frame.to_parquet(folder / "train.parquet", index=False)
    np.save(folder / "train.npy", X)
    return folder


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("fmt, labels", [(".csv", "label"), (".parquet", "label"), (".npy", None)])
def test_fit_transform_evaluate_round_trip(table, tmp_path, fmt, labels):
    source = table / f"train{fmt}"
    label_args = ["--labels", labels] if labels else []
    fitted = invoke("fit", source, "--dim", 2, "--model", tmp_path / "model", "--out", tmp_path / f"z{fmt}",
                    *label_args, *FAST)
    assert fitted.exit_code == 0, fitted.output
    assert "saved the model" in fitted.output
    moved = invoke("transform", tmp_path / "model", source, "--out", tmp_path / f"again{fmt}", *label_args)
    assert moved.exit_code == 0, moved.output
    Z, _, columns = read_table(tmp_path / f"again{fmt}")
    assert Z.shape == (200, 2)
    np.testing.assert_allclose(Z, read_table(tmp_path / f"z{fmt}")[0], rtol=1e-6)
    if fmt != ".npy":
        assert columns == ["gaussianembedder0", "gaussianembedder1"]  # the estimator's get_feature_names_out()
    scored = invoke("evaluate", tmp_path / f"z{fmt}", "--tests", "fast", "--json", tmp_path / "r.json",
                    "--report", tmp_path / "r.html")
    assert scored.exit_code == 0, scored.output
    assert "Henze–Zirkler" in scored.output
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 200
    assert "data:image/png;base64," in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_tsne_command(table, tmp_path):
    runs = [invoke("tsne", table / "train.npy", "--out", tmp_path / f"t{i}.csv", "--perplexities", "10,20",
                   "--seeds", 2, "--seed", 3, "--post", "rbig", "--n-jobs", 1, "--quiet", "--report",
                   tmp_path / f"t{i}.html") for i in range(2)]
    for result in runs:
        assert result.exit_code == 0, result.output
        assert "chosen run: perplexity=" in result.output and ("seed=3," in result.output or "seed=4," in result.output)
    Z = read_table(tmp_path / "t0.csv")[0]
    assert Z.shape == (200, 2)
    np.testing.assert_array_equal(Z, read_table(tmp_path / "t1.csv")[0])  # --seed makes --post rbig reproducible
    assert (tmp_path / "t0.html").is_file() and (tmp_path / "t1.html").is_file()


@pytest.fixture(scope="module")
def bad_files(table, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    frame = pd.read_csv(table / "train.csv")
    frame.to_csv(folder / "text.csv", index=False)  # 'label' is not numeric
    with_nan = frame.drop(columns="label")
    with_nan.iloc[3, 1] = np.nan
    with_nan.to_csv(folder / "nan.csv", index=False)
    (folder / "table.txt").write_text("1,2\n")
    return folder


@pytest.mark.parametrize("args, message", [
    (["fit", "{bad}/missing.csv", "--model", "{tmp}/m"], "no such file"),
    (["fit", "{bad}/text.csv", "--model", "{tmp}/m"], "not numeric"),
    (["fit", "{data}/train.csv", "--labels", "species", "--model", "{tmp}/m"], "no column named 'species'"),
    (["fit", "{bad}/nan.csv", "--model", "{tmp}/m"], "NaN"),
    (["fit", "{bad}/table.txt", "--model", "{tmp}/m"], "unsupported file type"),
    (["fit", "{data}/train.npy", "--model", "{tmp}/m", "--weight", "heavy"], "--weight"),
    (["fit", "{data}/train.npy", "--model", "{tmp}/m", "--input-noise", "-1"], "--input-noise"),
    (["fit", "{data}/train.npy", "--model", "{tmp}/m", "--input-noise", "loud"], "--input-noise"),
    (["fit", "{data}/train.npy", "--model", "{tmp}/m", "--regularizer", "vae"], "unknown regularizer"),
    (["fit", "{data}/train.npy", "--labels", "label", "--model", "{tmp}/m"], ".npy files have no column names"),
    (["transform", "{tmp}", "{data}/train.npy", "--out", "{tmp}/z.npy"], "no gaussify model"),
    (["evaluate", "{bad}/nan.csv"], "NaN"),
    (["evaluate", "{data}/train.npy", "--tests", "shapiro_wilk"], "unknown test"),
    (["tsne", "{data}/train.npy", "--out", "{tmp}/t.npy", "--perplexities", "a,b"], "--perplexities"),
    (["tsne", "{data}/train.npy", "--out", "{tmp}/t.npy", "--n-jobs", "0"], "n_jobs must be -1"),
])
def test_user_errors_exit_2_with_one_line(table, bad_files, tmp_path, args, message):
    args = [a.format(bad=bad_files, data=table, tmp=tmp_path) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("gaussify: error:") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_help_everywhere():
    for command in ([], ["fit"], ["transform"], ["evaluate"], ["tsne"], ["demo"], ["bench"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_fit_help_lists_every_registered_regularizer():
    from gaussify.regularizers import REGISTRY

    help_text = " ".join(runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "400"}).output.split())
    assert all(f"{name}," in help_text for name in REGISTRY)


def test_write_table_is_atomic_and_checks_the_extension(tmp_path):
    with pytest.raises(ValueError, match="unsupported file type"):
        write_table(tmp_path / "z.txt", np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        write_table(tmp_path / "z.npy", np.zeros((2, 2)))
        write_text_atomic(tmp_path / "note.md", "x")
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "weights").write_text("w")
    finally:
        os.umask(old)
    assert {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("z.npy", "note.md")} == {0o640}
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o750


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "b").write_text("2")
            raise RuntimeError("crash while writing")
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["a"]
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "c").write_text("3")
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_demo_quick(tmp_path):
    result = invoke("demo", "--quick", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    table = (tmp_path / "comparison.md").read_text().splitlines()
    methods = [line.split("|")[1].strip() for line in table[2:]]
    assert methods[0].endswith("(default)")
    assert {"PCA whitening", "t-SNE + whiten", "t-SNE + quantile", "t-SNE + rbig"} <= set(methods)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Comparison of methods on held-out digits" in page and "training curves" in page
    assert (tmp_path / "model" / "config.json").is_file()


def test_fit_with_a_flow_on_top(table, tmp_path):
    fitted = invoke("fit", table / "train.csv", "--labels", "label", "--model", tmp_path / "m", "--post", "flow",
                    "--post-fraction", 0.25, *FAST)
    assert fitted.exit_code == 0, fitted.output
    assert "post-hoc flow: KL" in fitted.output and "rows the encoder did not train on" in fitted.output
    moved = invoke("transform", tmp_path / "m", table / "train.csv", "--labels", "label", "--out", tmp_path / "z.npy")
    assert moved.exit_code == 0, moved.output
    assert (tmp_path / "m" / "post" / "flow.safetensors").is_file()
    bad = invoke("fit", table / "train.csv", "--labels", "label", "--model", tmp_path / "m2", "--post", "nope", *FAST)
    assert bad.exit_code == 2 and "post must be one of (None," in bad.output


@pytest.mark.parametrize("name", ["check_model_folder", "write_model_folder", "read_model_config"])
def test_model_folder_functions_keep_their_io_names_for_one_release(name):
    import gaussify.io
    import gaussify.model_folder

    with pytest.warns(FutureWarning, match=f"gaussify.io.{name} is deprecated.*use gaussify.model_folder.{name}"):
        assert getattr(gaussify.io, name) is getattr(gaussify.model_folder, name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        gaussify.io.nothing  # noqa: B018


def test_fit_takes_the_input_noise_as_a_number_or_auto(table, tmp_path):
    from gaussify import GaussianEmbedder

    for value, expected in (("0.5", 0.5), ("auto", "auto")):
        fitted = invoke("fit", table / "train.csv", "--labels", "label", "--model", tmp_path / value,
                        "--input-noise", value, *FAST)
        assert fitted.exit_code == 0, fitted.output
        assert GaussianEmbedder.load(tmp_path / value).input_noise == expected
