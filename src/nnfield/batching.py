"""Simulate jobs that run many (point, shard) tasks in one process.

A process pays Python start-up, the JAX import and compilation (about 6 s on a workstation core)
before any work, which for small points is most of the job.  The workflow therefore groups the
shards of one study into *batches*: one Snakemake job, one process, and every task's file
written exactly as a job of its own would write it (a point file does not depend on how points
were batched; ``tests/test_batching.py``).

Batch boundaries are content-defined, so that editing a sweep disturbs only the batches near
the edit.  Walking a study's tasks in configuration order, a batch ends

- after a task whose name hashes to 0 modulo its period ``R`` (a power of two near half the
  number of tasks of its own cost that fit the budget: it depends on that task alone), or
- before a task that would take its estimated cost past ``batching.seconds`` or its size past
  ``batching.max_points``.

Every boundary after an edit falls where it fell before, from the first hash boundary past the
edit on.  So a changed point reruns the batch that holds it (and, when its new name or cost
moves a boundary, one neighbour), and an added point reruns the batches around it.  Changing
``batching`` itself or a study's seed reruns the study's batches.  Batches are named by a hash of
their first task, so an unchanged batch keeps its rule and log name.

Each batch's task list is a file named by the batch and a hash of its content, written once
(never overwritten) when the workflow is evaluated and removed when a run ends without it in
the plan.  It is the batch job's input, so a changed batch (a new file, newer than the outputs)
reruns under any rerun trigger.

On a cluster, short batches (walltime request at the floor) on CPU form the Snakemake group
``simulate`` (:func:`submission_group`), so that the SLURM profile's ``group-components`` puts
several in one submission: a 10^5-point sweep of tiny points is about 200 submissions.

The cost estimate is a rough model of one CPU core's seconds (within a factor of about 2-3 on
the default configuration); it sets batch sizes and SLURM walltime requests, never results.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nnfield import SCHEMA_VERSION
from nnfield.config import PointSpec
from nnfield.engine import layout
from nnfield.engine.atomic import atomic_path

WALLTIME_FLOOR = 10
"""Minutes: the shortest SLURM walltime a batch asks for."""
SIMULATE_GROUP = "simulate"
"""The group of short CPU batches (:func:`submission_group`)."""


def estimated_seconds(spec: PointSpec) -> float:
    """Rough single-core seconds of one shard of ``spec`` (set-up included), from its study's
    cost model (nnfield.studies.base.Cost)."""
    from nnfield.studies import load

    cost = load(spec.study).cost(spec)
    return cost.setup_seconds + cost.seconds_per_unit * cost.units / spec.params["shards"]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Task:
    """One shard of one point: one simulate call, one file."""

    spec: PointSpec
    shard: int

    @property
    def output(self) -> str:
        return layout.shard_path(self.spec.study, self.spec.name, self.shard)

    @property
    def label(self) -> str:
        return f"{self.spec.name}#{self.shard}"

    def to_dict(self) -> dict:
        return {"spec": json.loads(self.spec.to_json()), "shard": self.shard, "out": self.output}


@dataclass(frozen=True)
class Batch:
    """Tasks of one study run by one simulate job."""

    study: str
    tasks: tuple[Task, ...]

    @cached_property
    def key(self) -> str:
        """Sixteen hex digits naming the batch: a hash of its first task."""
        return f"{_hash(self.study + '/' + self.tasks[0].label):016x}"

    @property
    def rule(self) -> str:
        """The Snakemake rule that runs this batch."""
        return f"simulate_{self.study}_{self.key}"

    @property
    def outputs(self) -> list[str]:
        return [task.output for task in self.tasks]

    @property
    def log(self) -> str:
        return f"{layout.RESULTS}/{self.study}/logs/simulate/batch-{self.key}.log"

    @property
    def task_file(self) -> str:
        """The batch's task list (input of its job), named by the batch and its content."""
        return f"{layout.RESULTS}/{self.study}/batches/{self.key}-{self.digest[:16]}.json"

    @cached_property
    def content(self) -> str:
        """The task file's text: every task's spec, shard and output path, and the data layout
        version (a new layout makes new task files, so every batch reruns)."""
        tasks = [task.to_dict() for task in self.tasks]
        content = {"study": self.study, "tasks": tasks, "schema_version": SCHEMA_VERSION}
        return json.dumps(content, sort_keys=True, indent=0) + "\n"

    @cached_property
    def digest(self) -> str:
        """sha256 of the task file's content."""
        return hashlib.sha256(self.content.encode()).hexdigest()

    @property
    def seconds(self) -> float:
        return sum(estimated_seconds(task.spec) for task in self.tasks)

    def runtime_minutes(self, attempt: int = 1) -> int:
        """SLURM walltime request: 5x the estimate, at least WALLTIME_FLOOR minutes, times the
        attempt."""
        return attempt * max(WALLTIME_FLOOR, math.ceil(5 * self.seconds / 60))

    @property
    def short(self) -> bool:
        """True when the walltime request is the floor's (an estimate of at most 2 minutes): a
        submission of its own would then spend as long queueing and starting as working."""
        return 5 * self.seconds <= 60 * WALLTIME_FLOOR


def submission_group(batch: Batch, device: str) -> str | None:
    """The Snakemake group of ``batch``'s job (groups act only on a cluster): ``simulate`` for a
    short batch on CPU, so that ``--group-components simulate=N`` (the SLURM profile sets it)
    puts N such batches in one submission.  None, a submission of its own, for a longer batch
    (grouping it would serialise work a cluster runs in parallel) and on GPU (a group asks for
    the sum of its jobs' GPUs)."""
    return SIMULATE_GROUP if device == "cpu" and batch.short else None


def plan(
    points: Mapping[str, Mapping[str, PointSpec]], settings: Mapping[str, float]
) -> list[Batch]:
    """Every (point, shard) of every study in exactly one batch, in configuration order.

    ``settings`` is the config's ``batching`` block: ``seconds`` (estimated budget of a batch)
    and ``max_points`` (tasks per batch at most)."""
    budget, most = float(settings["seconds"]), int(settings["max_points"])
    batches: list[Batch] = []
    for study, specs in points.items():
        current: list[Task] = []
        cost = 0.0
        for spec in specs.values():
            seconds = estimated_seconds(spec)
            for task in (Task(spec, k) for k in range(spec.params["shards"])):
                if current and (cost + seconds > budget or len(current) >= most):
                    batches.append(Batch(study, tuple(current)))
                    current, cost = [], 0.0
                current.append(task)
                cost += seconds
                if _hash(task.label) % period(seconds, settings) == 0:
                    batches.append(Batch(study, tuple(current)))
                    current, cost = [], 0.0
        if current:
            batches.append(Batch(study, tuple(current)))
    keys = [(b.study, b.key) for b in batches]
    if len(set(keys)) != len(keys):  # 64-bit hashes: not expected in any real sweep
        raise ValueError("two simulate batches got the same name; rename a point of the sweep")
    return batches


def period(seconds: float, settings: Mapping[str, float]) -> int:
    """R of a task of estimated ``seconds``: a power of two near half the number of such tasks
    that fit one batch (1 when fewer than three fit)."""
    fit = min(float(settings["max_points"]), float(settings["seconds"]) / seconds)
    return 2 ** max(0, round(math.log2(fit / 2))) if fit >= 2 else 1


def write_task_file(batch: Batch) -> bool:
    """Write the batch's task file unless it exists (its name holds its content's hash, so it
    is never rewritten and its mtime is when this content was first planned); True when
    written."""
    path = Path(batch.task_file)
    if path.exists():
        return False
    with atomic_path(path, remove_stale=False) as tmp:
        tmp.write_text(batch.content)
    return True


def remove_stale_task_files(batches: list[Batch]) -> list[Path]:
    """Delete the task files of the planned studies that no batch of the plan uses (after a
    run: a reverted config then writes its files anew, newer than outputs made in between)."""
    keep = {Path(b.task_file) for b in batches}
    removed = []
    for study in sorted({b.study for b in batches}):
        for path in Path(layout.RESULTS, study, "batches").glob("*.json"):
            if path not in keep:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def read_task_file(path: str | Path, digest: str | None = None) -> list[tuple[PointSpec, int, str]]:
    """(spec, shard, output) of every task in a task file written by :func:`write_task_file`;
    with ``digest``, refuse a file whose content hash differs (changed since it was planned)."""
    from nnfield.config import ConfigError

    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"{path}: not a readable batch task file ({err})") from err
    if digest is not None and hashlib.sha256(text.encode()).hexdigest() != digest:
        raise ConfigError(f"{path}: changed since the workflow planned it (content hash "
                          "differs); run snakemake again")  # fmt: skip
    try:
        raw = json.loads(text)
        return [
            (PointSpec.from_json(json.dumps(t["spec"])), int(t["shard"]), str(t["out"]))
            for t in raw["tasks"]
        ]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a readable batch task file ({err})") from err
