"""Batched simulate jobs (nnfield.batching): every task in exactly one batch, edits disturb only
the batches near them, task files change only with their batch, and a point's file does not
depend on the batch it ran in."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_reliability import ENV

from nnfield import batching, config
from nnfield.studies import load


def _points(cfg: dict) -> dict:
    return config.expand(config.validate(cfg))


@pytest.mark.parametrize(("seconds", "most"), [(120.0, 100), (10.0, 100), (1e6, 3), (1e-3, 100)])
def test_plan_holds_every_task_once_in_order_within_limits(seconds, most):
    points = _points(config.load())
    batches = batching.plan(points, {"seconds": seconds, "max_points": most})
    tasks = [(t.spec.study, t.spec.name, t.shard) for b in batches for t in b.tasks]
    expected = [(s, name, k) for s, specs in points.items() for name, spec in specs.items()
                for k in range(spec.params["shards"])]  # fmt: skip
    assert tasks == expected  # each exactly once, in configuration order
    assert len({b.rule for b in batches}) == len(batches)
    assert len({b.task_file for b in batches}) == len(batches)
    assert all(len(b.key) == 16 for b in batches)
    for batch in batches:
        assert {t.spec.study for t in batch.tasks} == {batch.study}
        assert len(batch.tasks) <= most
        assert len(batch.tasks) == 1 or batch.seconds <= seconds
    if seconds == 1e-3:
        assert all(len(b.tasks) == 1 for b in batches)  # every point above budget: one each
    if seconds == 120.0:
        assert len(batches) < len(tasks) / 3


def _hidden_sweep(contractions: list[float]) -> dict:
    """A hidden sweep of tiny points (contraction outer, noise inner)."""
    return {"studies": {"hidden": {
        "seed": 1, "networks": 20, "block_size": 2, "steps": 4, "burn_in": 2, "time_blocks": 2,
        "ensembles": [{"name": "cycle", "weights": "cycle", "neurons": 8,
                       "contractions": contractions,
                       "noises": [round(0.1 + 0.05 * i, 2) for i in range(20)]}]}}}  # fmt: skip


def _changed(before: list, after: list) -> tuple[list, list]:
    """(batches of ``after`` that ``before`` lacks, batches of ``before`` that went)."""
    old, new = {b.digest for b in before}, {b.digest for b in after}
    return [b for b in after if b.digest not in old], [b for b in before if b.digest not in new]


def test_an_inserted_value_reruns_only_nearby_batches():
    """A contraction inserted in the middle of an outer list adds 20 contiguous points: only
    the batches around them change (positional batches would change every later one), and the
    unchanged batches keep their names."""
    settings = {"seconds": 15.0, "max_points": 100}
    values = [round(0.05 + 0.02 * i, 2) for i in range(40)]
    before = batching.plan(_points(_hidden_sweep(values)), settings)
    after = batching.plan(_points(_hidden_sweep([*values[:20], 0.444, *values[20:]])), settings)
    added, gone = _changed(before, after)
    assert len(before) > 40
    assert len(gone) <= 3, (len(gone), len(before))
    assert {t.spec.params["contraction"] for b in added for t in b.tasks} >= {0.444}
    assert sum(len(b.tasks) for b in added) <= 20 + sum(len(b.tasks) for b in gone)
    kept = {b.digest: b.rule for b in before}
    assert all(kept[b.digest] == b.rule for b in after if b.digest in kept)


def test_a_changed_temperature_reruns_its_batch_and_at_most_one_more():
    cfg = config.load()
    settings = {"seconds": 20.0, "max_points": 100}
    before = batching.plan(_points(cfg), settings)
    edited = copy.deepcopy(cfg)
    prob = next(p for p in edited["studies"]["learning"]["problems"] if p["name"] == "teacher_sgd")
    prob["temperatures"][1] = 0.011
    after = batching.plan(_points(edited), settings)
    added, gone = _changed(before, after)
    assert 1 <= len(gone) <= 2 and len(before) > 5
    names = {t.spec.name for b in added for t in b.tasks}
    assert any("T~0.011/" in name for name in names)
    assert all(b.study == "learning" for b in added + gone)


def test_walltime_is_five_times_the_estimate_above_the_floor():
    big = _points({"studies": {"npoint": {
        "seed": 1, "networks": 10_000_000, "block_size": 100_000, "widths": [1000],
        "families": [{"name": "erf", "arch": "erf",
                      "inputs": [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]}]}}})  # fmt: skip
    (batch,) = batching.plan(big, {"seconds": 240, "max_points": 100})
    assert batch.seconds > 200  # well above the 10-minute floor's 120 s
    assert batch.runtime_minutes() == math.ceil(5 * batch.seconds / 60)
    assert batch.runtime_minutes(3) == 3 * batch.runtime_minutes()
    small = batching.plan(_points(TWO_STUDIES), {"seconds": 240, "max_points": 100})
    assert all(b.runtime_minutes() == 10 and b.runtime_minutes(2) == 20 for b in small)
    # short batches (walltime at the floor) share SLURM submissions on CPU; the long one, and
    # every batch on GPU, is a submission of its own
    assert all(b.short and batching.submission_group(b, "cpu") == "simulate" for b in small)
    assert not batch.short and batching.submission_group(batch, "cpu") is None
    assert all(batching.submission_group(b, "gpu") is None for b in [*small, batch])


def test_short_means_the_walltime_floor():
    """A batch is short exactly when its walltime request is the floor's: estimates of 120 s
    and just above it on either side of the line."""
    spec = next(iter(_points(TWO_STUDIES)["learning"].values()))
    per_task = batching.estimated_seconds(spec)
    seen = set()
    for tasks in (1, 2, 5, 20, 200):
        batch = batching.Batch("learning", tuple(batching.Task(spec, 0) for _ in range(tasks)))
        at_floor = batch.runtime_minutes() == batching.WALLTIME_FLOOR
        assert batch.short == at_floor == (5 * tasks * per_task <= 600), tasks
        seen.add(batch.short)
    assert seen == {True, False}, per_task


def test_cost_estimates_grow_with_size_and_inputs():
    specs = _points(config.load())["npoint"]
    small, large = specs["family~erf/width~2"], specs["family~erf/width~1000"]
    assert batching.estimated_seconds(large) > batching.estimated_seconds(small) > 0
    many = config.PointSpec("npoint", "x", 1, {**small.params, "inputs": [[0.1]] * 12})
    cost = load("npoint").cost
    assert cost(many).units > 30 * cost(small).units  # T4 x T2 term


def test_task_files_are_written_once_named_by_content_and_cleaned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = batching.plan(_points(TWO_STUDIES), {"seconds": 1e9, "max_points": 100})
    (batch,) = [b for b in plan if b.study == "learning"]
    assert batching.write_task_file(batch)
    path = tmp_path / batch.task_file
    stamp = path.stat().st_mtime_ns
    assert not batching.write_task_file(batch) and path.stat().st_mtime_ns == stamp
    rows = batching.read_task_file(batch.task_file, digest=batch.digest)
    assert [(s.to_json(), k, o) for s, k, o in rows] == [
        (t.spec.to_json(), t.shard, t.output) for t in batch.tasks
    ]
    spec = batch.tasks[0].spec
    other = batching.Batch(batch.study, (batching.Task(
        config.PointSpec(spec.study, spec.name, spec.seed + 1, spec.params), 0),))  # fmt: skip
    assert other.key == batch.key and other.task_file != batch.task_file
    assert batching.write_task_file(other) and path.exists()  # the old one stays until a run ends
    with pytest.raises(config.ConfigError, match="changed since the workflow planned it"):
        batching.read_task_file(batch.task_file, digest=other.digest)
    assert batching.remove_stale_task_files([other]) == [Path(batch.task_file)]
    assert not path.exists() and (tmp_path / other.task_file).exists()


def test_duplicate_batch_names_are_refused(monkeypatch):
    monkeypatch.setattr(batching, "_hash", lambda text: 0)  # every task a boundary, one name
    with pytest.raises(ValueError, match="same name"):
        batching.plan(_points(TWO_STUDIES), {"seconds": 240, "max_points": 100})


def test_appended_heavier_points_leave_earlier_batches_alone():
    """Each task's hash period depends on its own cost only: appending an ensemble of costlier
    points (which moves the study's mean cost) keeps every earlier batch but the last."""

    def sweep(neurons):
        return {"studies": {"hidden": {
            "seed": 1, "networks": 200, "block_size": 20, "steps": 200, "burn_in": 20,
            "time_blocks": 2,
            "ensembles": [{"name": f"n{n}", "weights": "cycle", "neurons": n,
                           "contractions": [round(0.1 + 0.002 * i, 3) for i in range(300)]}
                          for n in neurons]}}}  # fmt: skip

    settings = {"seconds": 240.0, "max_points": 100}
    before = batching.plan(_points(sweep([8, 16])), settings)
    after = batching.plan(_points(sweep([8, 16, 48])), settings)
    added, gone = _changed(before, after)
    assert len(before) > 10 and len(gone) <= 1, (len(gone), len(before))
    assert all(t.spec.params["ensemble"] == "n48" for b in added[1:] for t in b.tasks)


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
                                   "initial": ["broad"], "steps": 10},
                                  {"name": "b", "kind": "barrier", "hessian_eigenvalues": [1.0],
                                   "barrier": 2.0, "barrier_width": 0.5, "learning_rates": [0.2],
                                   "temperatures": [0.5], "initial": ["broad"], "steps": 10}]},
        "depth": {"seed": 5, "networks": 200, "block_size": 20,
                  "families": [{"name": "relu", "activation": "relu", "inputs": [1.0, 0.5],
                                "widths": [4], "depths": [3]}]},
        "hidden": {"seed": 6, "networks": 20, "block_size": 2, "steps": 8, "burn_in": 2,
                   "time_blocks": 2,
                   "ensembles": [{"name": "cycle", "weights": "cycle", "neurons": 6,
                                  "contractions": [0.3, 0.6]}]},
    }
}  # fmt: skip


def test_a_point_file_does_not_depend_on_its_batch(tmp_path):
    """Nine tasks of four studies in one process (from a task file, in a shuffled order: two
    shards, two widths, two hidden points of one shape, a quadratic and a barrier problem, a
    deep network) give the same bytes as one process per task (checked for one task of each
    study, a second shard and the second hidden point)."""
    batches = batching.plan(_points(TWO_STUDIES), {"seconds": 1e9, "max_points": 100})
    tasks = [t for b in batches for t in b.tasks]
    assert len(tasks) == 9
    order = [3, 0, 7, 5, 2, 8, 4, 1, 6]
    rows = [{**tasks[i].to_dict(), "out": str(tmp_path / f"batched-{i}.nc")} for i in order]
    (tmp_path / "tasks.json").write_text(json.dumps({"study": "mixed", "tasks": rows}))
    run = _simulate("--tasks", str(tmp_path / "tasks.json"))
    assert run.returncode == 0, run.stderr[-2000:]
    # one process each (about 6 s apiece) for one task of every study, a second shard, and the
    # second hidden point, which ran after one of the same shape in the batch
    for i in (1, 4, 5, 6, 8):
        task = tasks[i]
        alone = tmp_path / f"alone-{i}.nc"
        run = _simulate("--spec", task.spec.to_json(), "--shard", str(task.shard),
                        "--out", str(alone))  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        assert alone.read_bytes() == (tmp_path / f"batched-{i}.nc").read_bytes(), task.label


def test_mismatched_task_options_are_refused_before_any_work(tmp_path):
    spec = next(iter(_points(TWO_STUDIES)["learning"].values()))
    run = _simulate("--spec", spec.to_json(), "--spec", spec.to_json(),
                    "--out", str(tmp_path / "a.nc"))  # fmt: skip
    assert run.returncode == 2
    assert "2 --spec, 0 --shard and 1 --out" in run.stderr
    (tmp_path / "bad.json").write_text('{"tasks": [{"spec": {}}]}')
    run = _simulate("--tasks", str(tmp_path / "bad.json"))
    assert run.returncode == 2 and "bad.json: not a readable batch task file" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_batching_keys_are_validated():
    bad = {**copy.deepcopy(TWO_STUDIES), "batching": {"max_points": 0}}
    with pytest.raises(config.ConfigError, match=r"batching\.max_points"):
        config.validate(bad)
    assert config.validate(TWO_STUDIES)["batching"] == {"seconds": 240, "max_points": 100}
