"""What a new user hit in one afternoon (issue 11), one regression test each: nothing a user owns is deleted
or overwritten without --overwrite, no silent wrong answer, and every user error is one line naming the file
(and row and column where it applies), exit status 2, no traceback."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_iris
from typer.testing import CliRunner

from gaussify import GaussianEmbedder
from gaussify.cli import app
from gaussify.io import read_table
from gaussify.metrics import MIN_ROWS
from gaussify.metrics._common import format_number, format_pvalue
from gaussify.tasks import target_kind

FAST = ["--epochs", "1", "--quiet"]
SMALL = dict(hidden_layer_sizes=(16,), max_epochs=1, random_state=0)


@pytest.fixture()
def iris(tmp_path, monkeypatch):
    """iris.csv (4 features and a 'label' column) in a fresh current folder."""
    monkeypatch.chdir(tmp_path)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "label"})
    frame.to_csv("iris.csv", index=False)
    return frame


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *needles):
    """The call failed as a user error: exit 2, one stderr line naming every needle, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("gaussify: error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------- data loss (1, 2)


def test_fit_never_empties_a_folder_of_the_user(iris):
    os.mkdir("precious")
    with open("precious/thesis.txt", "w") as handle:
        handle.write("x")
    for extra in ([], ["--overwrite"]):
        one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "precious", *FAST, *extra),
                       "precious", "thesis.txt")
        assert os.listdir("precious") == ["thesis.txt"]


def test_fit_never_turns_the_input_into_a_model(iris):
    before = open("iris.csv").read()
    one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "iris.csv", *FAST), "iris.csv",
                   "is a file")
    assert open("iris.csv").read() == before


def test_save_refuses_the_current_folder_and_leaves_nothing_behind(iris):
    model = GaussianEmbedder(2, **SMALL).fit(iris.drop(columns="label").to_numpy(), iris["label"].to_numpy())
    for target in (os.getcwd(), ".", os.path.dirname(os.getcwd())):
        with pytest.raises(ValueError, match="current folder"):
            model.save(target, overwrite=True)
    assert sorted(os.listdir(".")) == ["iris.csv"]  # no stray .gaussify-old-* folder


def test_an_earlier_model_is_replaced_only_with_overwrite_and_only_if_it_holds_nothing_else(iris):
    args = ("fit", "iris.csv", "--labels", "label", "--model", "m", *FAST)
    assert invoke(*args).exit_code == 0
    one_line_error(invoke(*args), "earlier gaussify model", "--overwrite")
    assert invoke(*args, "--overwrite").exit_code == 0
    with open("m/notes.txt", "w") as handle:
        handle.write("mine")
    one_line_error(invoke(*args, "--overwrite"), "notes.txt")
    assert sorted(os.listdir("m")) == ["config.json", "encoder.safetensors", "notes.txt"]


def test_out_never_replaces_the_input_and_needs_overwrite_for_an_existing_file(iris):
    before = open("iris.csv").read()
    for extra in ([], ["--overwrite"]):
        one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "iris.csv", *FAST,
                              *extra), "--out iris.csv", "input")
    assert open("iris.csv").read() == before and not os.path.exists("m")
    with open("z.csv", "w") as handle:
        handle.write("keep")
    one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "z.csv", *FAST),
                   "z.csv", "already exists", "--overwrite")
    assert open("z.csv").read() == "keep" and not os.path.exists("m")
    assert invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "z.csv", *FAST,
                  "--overwrite").exit_code == 0
    assert read_table("z.csv")[0].shape == (150, 2)


def test_output_paths_and_formats_are_checked_before_any_work(iris):
    # a bad --out fails at once: no model folder was written, so no training happened
    one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "out.txt", *FAST),
                   "--out out.txt", ".txt")
    one_line_error(invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--report", "r.pdf", *FAST),
                   "--report r.pdf")
    assert not os.path.exists("m")
    one_line_error(invoke("tsne", "iris.csv", "--labels", "label", "--out", "x.txt"), "--out x.txt", ".txt")
    one_line_error(invoke("evaluate", "iris.csv", "--labels", "label", "--json", "r.txt"), "--json r.txt")
    assert invoke("fit", "iris.csv", "--labels", "label", "--model", "m", *FAST).exit_code == 0
    one_line_error(invoke("transform", "m", "iris.csv", "--labels", "label", "--out", "iris.csv"), "input")


# -------------------------------------------------------------------------------------- silent wrong answers (3-6)


def test_whole_number_quantities_are_a_regression_and_the_task_can_be_stated():
    X, y = load_diabetes(return_X_y=True)
    assert np.all(y == np.round(y)) and target_kind(y) == "regression"  # 214 values over 442 rows
    assert target_kind(np.repeat([0.0, 1.0, 2.0], 20)) == "classification"
    assert target_kind(np.array(["a", "b", "a"])) == "classification"
    model = GaussianEmbedder(2, **SMALL).fit(X, y)
    assert not hasattr(model, "classes_")  # a regression head, not a 214-class cross-entropy
    forced = GaussianEmbedder(2, task="classification", **SMALL).fit(X, y)
    assert len(forced.classes_) == len(np.unique(y))
    iris_X, iris_y = load_iris(return_X_y=True)
    assert not hasattr(GaussianEmbedder(2, task="regression", **SMALL).fit(iris_X, iris_y), "classes_")


def test_integer_labels_with_few_rows_per_class_warn():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 30
    with pytest.warns(UserWarning, match="30 classes for 60 rows.*task='regression'"):
        GaussianEmbedder(2, **SMALL).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianEmbedder(2, task="classification", **SMALL).fit(X, y)  # stated: no warning


def test_transform_matches_columns_by_name(iris):
    assert invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "z.csv", *FAST).exit_code == 0
    iris[iris.columns[::-1]].to_csv("reversed.csv", index=False)
    assert invoke("transform", "m", "reversed.csv", "--labels", "label", "--out", "zr.csv").exit_code == 0
    np.testing.assert_array_equal(read_table("zr.csv")[0], read_table("z.csv")[0])
    iris.drop(columns=["sepal width (cm)"]).to_csv("missing.csv", index=False)
    one_line_error(invoke("transform", "m", "missing.csv", "--labels", "label", "--out", "zm.csv"),
                   "missing.csv", "lacks column(s) sepal width (cm)")
    one_line_error(invoke("transform", "m", "iris.csv", "--out", "zm.csv"), "has column(s) label", "--labels")


def test_a_csv_without_a_header_keeps_its_first_row(iris):
    iris.drop(columns="label").to_csv("plain.csv", index=False, header=False)
    X, _, columns = read_table("plain.csv")
    assert X.shape == (150, 4) and columns is None
    np.testing.assert_array_equal(X, iris.drop(columns="label").to_numpy())


# ---------------------------------------------------------------------------------- crashes and unclear errors (7-9)


def test_an_empty_label_cell_is_a_one_line_error(iris):
    iris.astype({"label": object}).assign(label=lambda f: f["label"].where(f.index != 5)).to_csv("gap.csv",
                                                                                                   index=False)
    one_line_error(invoke("fit", "gap.csv", "--labels", "label", "--model", "m", *FAST), "gap.csv", "'label'",
                   "line 7")


@pytest.mark.parametrize("n", [2, 16, 17, MIN_ROWS])
def test_tiny_training_sets_fit(n):
    rng = np.random.default_rng(0)
    model = GaussianEmbedder(2, **SMALL).fit(rng.normal(size=(n, 3)), rng.integers(2, size=n) if n > 2 else [0, 1])
    assert (model.gaussianity_ is None) == (n < MIN_ROWS)


def test_tiny_fit_says_why_there_is_no_report(iris):
    iris.sample(17, random_state=0).to_csv("tiny.csv", index=False)
    result = invoke("fit", "tiny.csv", "--labels", "label", "--model", "m", *FAST)
    assert result.exit_code == 0 and f"needs at least {MIN_ROWS} training rows" in result.output
    assert "None" not in result.output


def test_bad_files_name_the_file_and_the_cell(iris, tmp_path):
    iris.assign(**{"petal length (cm)": iris["petal length (cm)"].where(iris.index != 7)}).to_csv("nan.csv",
                                                                                                  index=False)
    one_line_error(invoke("evaluate", "nan.csv", "--labels", "label"), "nan.csv", "NaN", "'petal length (cm)'",
                   "line 9")
    with open("text.npy", "w") as handle:
        handle.write("not an array")
    one_line_error(invoke("evaluate", "text.npy"), "text.npy", "not a NumPy .npy file")
    np.save("objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    one_line_error(invoke("evaluate", "objects.npy"), "objects.npy", "never unpickled")
    iris.iloc[:0].to_csv("header.csv", index=False)
    one_line_error(invoke("evaluate", "header.csv"), "header.csv", "no data rows")
    os.mkdir("folder.csv")
    one_line_error(invoke("evaluate", "folder.csv"), "folder.csv", "is a folder")
    np.save("inf.npy", np.where((np.arange(10)[:, None] == 3) & (np.arange(2) == 1), np.inf, 1.0))
    with pytest.raises(ValueError, match=r"inf.npy: an infinite value in column index 1, row index 3;"):
        read_table("inf.npy", mmap=True)


# -------------------------------------------------------------------------------------- friction and cosmetics (15-16)


def test_warnings_are_one_line_and_numbers_print_readably(iris):
    # iris has a duplicate row: the post-fit report's kNN KL warns about it
    result = invoke("fit", "iris.csv", "--labels", "label", "--model", "m", *FAST)
    assert result.exit_code == 0 and "gaussify: warning: " in result.output
    assert "warnings.warn" not in result.output and ".py:" not in result.output
    assert format_number(10108698237365670.0) == "1.011e+16"
    assert format_number(0.12345) == "0.1235" and format_number(0.0) == "0.0000"
    assert format_pvalue(0.0) == "<1e-300" and format_pvalue(0.0123) == "0.0123"


def test_help_shows_flags_as_flags_and_there_is_a_version():
    help_text = invoke("fit", "--help").output
    assert "--quiet" in help_text and "<bool>" not in help_text and "--overwrite" in help_text
    assert "--n-jobs" in help_text and "regression" in help_text
    version = invoke("--version")
    assert version.exit_code == 0 and version.output.startswith("gaussify ")


def test_api_and_cli_name_the_output_columns_alike(iris):
    assert invoke("fit", "iris.csv", "--labels", "label", "--model", "m", "--out", "z.parquet", *FAST).exit_code == 0
    model = GaussianEmbedder.load("m")
    assert read_table("z.parquet")[2] == list(model.get_feature_names_out())


# ------------------------------------------------------------------------------------------- threads (12)


def test_n_jobs_sets_torch_threads_during_fit_and_restores_them():
    rng = np.random.default_rng(0)
    seen = []
    X = rng.normal(size=(40, 3))
    before = torch.get_num_threads()
    GaussianEmbedder(2, task=lambda z, x, y: seen.append(torch.get_num_threads()) or z.pow(2).mean(),
                     n_jobs=1, **SMALL).fit(X)
    assert set(seen) == {1} and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_jobs"):
        GaussianEmbedder(2, n_jobs=0, **SMALL).fit(X)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_qq_plot_labels_and_legend_stay_inside_the_figure(d):
    from gaussify.plots import qq_plot

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = qq_plot(np.random.default_rng(0).normal(size=(100, d)))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    for artist in (fig._supylabel, fig._suptitle, *fig.legends):
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, artist


def test_demo_table_is_mean_and_sd_over_runs():
    from gaussify.demo import _mean_sd

    runs = [[{"method": "a", "dim": 2, "kl": 0.3}], [{"method": "a", "dim": 2, "kl": 0.5}]]
    assert _mean_sd(runs) == [{"method": "a", "dim": 2, "kl": "0.400 ± 0.141"}]
