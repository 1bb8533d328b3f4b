"""The training-speed benchmark's --quick mode runs and writes a well-formed table (timings are not checked)."""

import pytest

from gaussify.bench.epoch import COLUMNS, main


def test_quick_run_writes_a_well_formed_table(tmp_path, capsys):
    assert main(["--quick", "--n", "600", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "epoch.md").read_text()
    assert "Versions:" in report and "Machine:" in report and "600 x 64" in report
    lines = report.splitlines()
    start = lines.index("| " + " | ".join(COLUMNS) + " |")
    rows = lines[start + 2:]
    assert [row.split(" | ")[0] for row in rows if row] == ["| swd", "| moments"]
    for row in filter(None, rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(cell) > 0 for cell in cells[1:5])
        assert cells[5] == "meets" or cells[5].startswith("misses (slowest later epoch")
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [(["--regularizers", "nope"], "unknown regularizer"),
                                           (["--epochs", "1"], "epochs >= 2")])
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err
