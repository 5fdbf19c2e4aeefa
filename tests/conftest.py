"""Shared helpers: simulate one point in memory (no files) and analyse it."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")


from nnfield.config import PointSpec
from nnfield.studies import load


def _share_compiled_programs() -> None:
    """One persistent XLA compilation cache for the test runs, shared by the xdist workers: the
    many tests that build the same kernel (same spec, shards, devices) compile it once (about
    10% of the suite's time).  Results do not depend on it (as for simulate jobs; nnfield.cli);
    entries are keyed by the program and the JAX version."""
    import tempfile

    import jax

    path = os.path.join(tempfile.gettempdir(), "nnfield-tests-jax")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


_share_compiled_programs()

from nnfield.engine.precision import enable_x64  # noqa: E402

enable_x64()  # the test suite is an entry point: its samplers are built directly

INPUTS = {
    "relu": [0.2, 0.5, 0.8, 1.1],
    "erf": [-1.0, -0.4, 0.3, 1.0],
    "gauss": [-0.6, -0.1, 0.4, 0.9],
    "softplus": [-1.0, -0.3, 0.4, 1.2],
    "cos": [-0.9, -0.3, 0.2, 0.8],
}


def make_spec(
    arch: str,
    width: int,
    networks: int,
    block_size: int = 1000,
    shards: int = 1,
    inputs=None,
    seed: int = 12345,
    family: str | None = None,
    estimator: str = "brute",
    **sigmas: float,
) -> PointSpec:
    """A point spec with the config's layout (inputs as a list of d-vectors)."""
    raw = INPUTS[arch] if inputs is None else inputs
    vecs = [[float(x)] if np.isscalar(x) else [float(v) for v in x] for x in raw]
    params = {
        "family": family or arch,
        "arch": arch,
        "width": width,
        "input_dim": len(vecs[0]),
        "inputs": vecs,
        "sigma_w0": 1.0,
        "sigma_b0": 1.0,
        "sigma_w1": 1.0,
        "sigma_b1": 1.0,
        "networks": networks,
        "block_size": block_size,
        "shards": shards,
        "dtype": "float32",
        "estimator": estimator,
    }
    params.update({k: float(v) for k, v in sigmas.items()})
    name = f"family~{params['family']}/width~{width}"
    return PointSpec("npoint", name, seed, params)


def run_point(spec: PointSpec):
    """Simulate every shard of ``spec`` and merge: the merged raw dataset."""

    shards = [load("npoint").simulate(spec, k) for k in range(spec.params["shards"])]
    return load("npoint").merge(shards)


@pytest.fixture(scope="session")
def point_runner():
    cache = {}

    def run(spec: PointSpec):
        key = spec.to_json()
        if key not in cache:
            cache[key] = run_point(spec)
        return cache[key]

    return run


LONGEST_FIRST = (
    "tests/test_workflow.py",
    "tests/test_workflow_kill.py",
    "tests/test_install.py",
    "tests/test_reliability.py",
    "tests/test_teacher_student.py",
    "tests/test_sharding.py",
)
"""Test files that take longest, in the order a parallel run (``-n auto --dist loadfile``, one
file per worker) should start them.  xdist otherwise starts the files with the most tests
first, which left the end-to-end workflow file (the longest by far) to run alone at the end."""


def pytest_configure(config):
    if getattr(config.option, "dist", "no") == "loadfile":
        config.option.loadscopereorder = False  # keep the collection order set below


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the other files keep their order


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The tiny workflow run (tests/test_workflow.py's TINY config), run once per test session
    and shared by every module that asks for it, also across pytest-xdist workers: the first
    worker to need it runs it under a file lock in the session's shared temporary directory,
    the others wait for it and reuse its directory (a failed run is reported, not retried).
    Tests must not change it, except as tests/test_workflow.py does (reruns that leave it as
    it was)."""
    import fcntl

    from test_workflow import TINY, snakemake

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    work = shared / "finished_run"
    done, failed = shared / "finished_run.done", shared / "finished_run.failed"
    with open(shared / "finished_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            pytest.fail(f"the tiny workflow run failed (in another worker):\n{failed.read_text()}")
        if not done.exists():
            work.mkdir(exist_ok=True)
            (work / "tiny.yaml").write_text(TINY)
            run = snakemake(work, "--cores", "2")
            if run.returncode != 0:
                failed.write_text(run.stderr[-3000:])
                pytest.fail(f"the tiny workflow run failed:\n{run.stderr[-3000:]}")
            done.touch()
    return work
