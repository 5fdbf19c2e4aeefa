"""Batched simulate jobs (nnfield.batching): every task in exactly one batch, a changed point
reruns only its batch, and a point's file does not depend on the batch it ran in."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from test_reliability import ENV

from nnfield import batching, config


def _points(cfg: dict) -> dict:
    return config.expand(config.validate(cfg))


def _default() -> dict:
    return config.load()


@pytest.mark.parametrize(("seconds", "most"), [(60.0, 100), (10.0, 100), (1e6, 3), (1e-3, 100)])
def test_plan_holds_every_task_once_in_order_within_limits(seconds, most):
    cfg = _default()
    points = _points(cfg)
    batches = batching.plan(points, {"seconds": seconds, "max_points": most})
    tasks = [(t.spec.study, t.spec.name, t.shard) for b in batches for t in b.tasks]
    expected = [(s, name, k) for s, specs in points.items() for name, spec in specs.items()
                for k in range(spec.params["shards"])]  # fmt: skip
    assert tasks == expected  # each exactly once, in configuration order
    assert len({b.rule for b in batches}) == len(batches)
    for batch in batches:
        assert {t.spec.study for t in batch.tasks} == {batch.study}
        assert len(batch.tasks) <= most
        assert len(batch.tasks) == 1 or batch.seconds <= seconds
        assert batch.runtime_minutes(2) == 2 * batch.runtime_minutes(1) >= 20
    if seconds == 1e-3:
        assert all(len(b.tasks) == 1 for b in batches)  # every point above budget: one each
    if most == 3:
        assert len(batches) == sum(-(-len(p) // 3) for p in points.values())


def test_a_changed_temperature_changes_one_batch_only():
    """A parameter outside the cost model moves no batch boundary: only the batch holding the
    point has other arguments (so Snakemake's params trigger reruns it and nothing else)."""
    cfg = _default()
    settings = {"seconds": 20.0, "max_points": 100}
    before = batching.plan(_points(cfg), settings)
    edited = copy.deepcopy(cfg)
    prob = next(p for p in edited["studies"]["learning"]["problems"] if p["name"] == "teacher_sgd")
    prob["temperatures"][1] = 0.011
    after = batching.plan(_points(edited), settings)
    assert [b.outputs for b in before] != [] and len(before) > 3
    changed = [b.rule for b, a in zip(before, after, strict=True) if b.arguments() != a.arguments()]
    assert len(changed) == 1 and changed[0].startswith("simulate_learning_")
    assert [b.rule for b in before] == [b.rule for b in after]


def test_cost_estimates_grow_with_size():
    specs = _points(_default())["npoint"]
    small, large = specs["family~erf/width~2"], specs["family~erf/width~1000"]
    assert batching.estimated_seconds(large) > batching.estimated_seconds(small) > 0


def _simulate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfield", "-q", "simulate", *args],
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


TWO_STUDIES = {
    "studies": {
        "npoint": {"seed": 3, "networks": 2000, "block_size": 100, "shards": 2, "widths": [3, 7],
                   "families": [{"name": "erf", "arch": "erf", "inputs": [0.5, 1.0]}]},
        "learning": {"seed": 4, "networks": 200, "block_size": 20, "samples": 5,
                     "problems": [{"name": "q", "hessian_eigenvalues": [1.0, 0.5],
                                   "learning_rates": [0.1], "temperatures": [0.5],
                                   "initial": ["broad"], "steps": 10}]},
    }
}  # fmt: skip


def test_a_point_file_does_not_depend_on_its_batch(tmp_path):
    """Four tasks of two studies in one process give the same bytes as four processes of one
    task each (in another order)."""
    batch = batching.plan(_points(TWO_STUDIES), {"seconds": 1e9, "max_points": 100})
    tasks = [t for b in batch for t in b.tasks]
    tasks = [tasks[3], tasks[0], tasks[2], tasks[4]]  # shards 1 and 0, two widths, learning
    args = []
    for i, task in enumerate(tasks):
        args += ["--spec", task.spec.to_json(), "--shard", str(task.shard),
                 "--out", str(tmp_path / f"batched-{i}.nc")]  # fmt: skip
    run = _simulate(*args)
    assert run.returncode == 0, run.stderr[-2000:]
    for i, task in reversed(list(enumerate(tasks))):
        alone = tmp_path / f"alone-{i}.nc"
        run = _simulate("--spec", task.spec.to_json(), "--shard", str(task.shard),
                        "--out", str(alone))  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        assert alone.read_bytes() == (tmp_path / f"batched-{i}.nc").read_bytes(), task


def test_mismatched_task_options_are_refused_before_any_work(tmp_path):
    spec = next(iter(_points(TWO_STUDIES)["learning"].values()))
    run = _simulate("--spec", spec.to_json(), "--spec", spec.to_json(),
                    "--out", str(tmp_path / "a.nc"))  # fmt: skip
    assert run.returncode == 2
    assert "2 --spec, 0 --shard and 1 --out" in run.stderr
    assert not list(tmp_path.iterdir())


def test_batching_keys_are_validated():
    bad = {**copy.deepcopy(TWO_STUDIES), "batching": {"max_points": 0}}
    with pytest.raises(config.ConfigError, match=r"batching\.max_points"):
        config.validate(bad)
    assert config.validate(TWO_STUDIES)["batching"] == {"seconds": 60, "max_points": 100}
