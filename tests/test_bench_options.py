"""benchmarks/bench_options.py: the derived settings of the SIGReg batch-size study."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "bench_options", Path(__file__).parents[1] / "benchmarks" / "bench_options.py")
bench_options = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_options)


def test_matched_steps_and_square_root_rule_at_batch_1024():
    """1257 training rows: 10 steps per epoch at batch 128 and 2 at 1024, so 200 epochs become 1000; Adam's
    learning rate 1e-3 becomes 1e-3 · √8. The batch-128 rows are the same settings in every table."""
    tables = bench_options.STUDIES["sigreg-scale"]["tables"]
    steps = tables["Same optimizer steps"]["mean, weight 256, batch 1024 (same steps as 128)"]
    sqrt_lr = tables["Same epochs, Adam's square-root rule"]["mean, weight 256, batch 1024 (learning rate × √8)"]
    assert bench_options.resolve(steps, 1257)["max_epochs"] == 1000
    assert bench_options.resolve(sqrt_lr, 1257)["learning_rate"] == pytest.approx(1e-3 * 8 ** 0.5)
    assert "max_epochs" not in bench_options.resolve(sqrt_lr, 1257)
    assert len({repr(rows["sum, weight 1, batch 128"]) for rows in tables.values()}) == 1
