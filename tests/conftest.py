"""Shared test setup: a headless matplotlib, and one intra-op thread per worker (the suite runs
under pytest-xdist; tiny-tensor loops are 10-30x faster without thread hand-offs)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
