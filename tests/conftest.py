"""Shared test setup: a headless matplotlib, one intra-op thread per worker (the suite runs
under pytest-xdist; tiny-tensor loops are 10-30x faster without thread hand-offs),
derandomized hypothesis (the same examples on every run and machine: no test depends on luck),
a Monte Carlo disk cache in a temporary folder per session (never the user's cache), and the
scripts of examples/ importable as modules."""

import importlib.util
import os
from pathlib import Path

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


@pytest.fixture(scope="session", autouse=True)
def _monte_carlo_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # os.environ: subprocesses (the CLI tests) inherit it
        patch.setenv("GAUSSIFY_CACHE_DIR", str(tmp_path_factory.mktemp("gaussify-cache")))
        yield


@pytest.fixture(scope="session")
def load_example():
    """``load_example("train_ddp")``: examples/train_ddp.py imported as a module (examples/ is not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
