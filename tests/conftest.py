"""Shared test setup: a headless matplotlib, one intra-op thread per worker (the suite runs
under pytest-xdist; tiny-tensor loops are 10-30x faster without thread hand-offs), and
derandomized hypothesis (the same examples on every run and machine: no test depends on luck)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("gaussify", derandomize=True, deadline=None, database=None)
settings.load_profile("gaussify")


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
