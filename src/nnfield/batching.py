"""Simulate jobs that run many (point, shard) tasks in one process.

A process pays Python start-up, the JAX import and compilation (about 6 s on a workstation core)
before any work, which for small points is most of the job.  The workflow therefore groups the
shards of one study into *batches*: one Snakemake job, one process, one compilation per shape,
and every task's file written exactly as a job of its own would write it (a point file does not
depend on how points were batched; ``tests/test_batching.py``).

Batches are formed per study in configuration order: tasks are added to the current batch until
its estimated cost would pass ``batching.seconds`` or it holds ``batching.max_points`` tasks.  A
task whose estimate alone passes the budget is a batch of its own.  Changing a parameter that does
not enter the cost estimate (a seed, a learning rate, a temperature, a noise) reruns exactly the
batch that holds the point; a change of size (width, networks, steps) or an added point can move
the boundaries of the later batches of that study, which then rerun (same bytes, more work).

The cost estimate is a rough model of one CPU core's seconds (measured on the default
configuration, within a factor of about 2-3); it steers batch sizes and SLURM walltime requests,
never results.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from nnfield import layout
from nnfield.config import PointSpec

SETUP_SECONDS = {"npoint": 2.0, "depth": 3.0, "learning": 3.0, "hidden": 1.0}
"""Per task: compilation (or a cache load) and set-up, by study."""

SECONDS_PER_UNIT = {"npoint": 1e-8, "depth": 5e-10, "learning": 5e-8, "hidden": 1e-8,
                    "teacher_student": 7e-9}  # fmt: skip
"""Per unit of :func:`work_units`, by study (the teacher-student problems of the learning study
have their own unit)."""


def work_units(spec: PointSpec) -> tuple[str, float]:
    """(rate key, size of the whole point in that key's units): networks times the arithmetic of
    one network (inputs x width for npoint, width^2 x depth x inputs for depth, steps x dim^2 for
    the quadratic and barrier problems, steps x train size x width x (input dim + depth x width)
    for teacher-student, steps x neurons^2 for hidden)."""
    p = spec.params
    networks = float(p["networks"])
    if spec.study == "npoint":
        return "npoint", networks * p["width"] * len(p["inputs"]) * p["input_dim"]
    if spec.study == "depth":
        return "depth", networks * p["width"] ** 2 * p["depth"] * len(p["inputs"])
    if spec.study == "learning":
        steps = p["steps"]
        if p["kind"] == "teacher_student":
            per = p["train_size"] * p["width"] * (p["input_dim"] + p["depth"] * p["width"])
            return "teacher_student", networks * steps * per
        return "learning", networks * steps * len(p["hessian_eigenvalues"]) ** 2
    if spec.study == "hidden":
        return "hidden", networks * (p["steps"] + p["burn_in"]) * p["neurons"] ** 2
    raise ValueError(f"no cost model for study {spec.study!r}")


def estimated_seconds(spec: PointSpec) -> float:
    """Rough single-core seconds of one shard of ``spec`` (set-up included)."""
    key, units = work_units(spec)
    return SETUP_SECONDS[spec.study] + SECONDS_PER_UNIT[key] * units / spec.params["shards"]


@dataclass(frozen=True)
class Task:
    """One shard of one point: one simulate call, one file."""

    spec: PointSpec
    shard: int

    @property
    def output(self) -> str:
        return layout.shard_path(self.spec.study, self.spec.name, self.shard)


@dataclass(frozen=True)
class Batch:
    """Tasks of one study run by one simulate job (``index`` counts from 0 within the study)."""

    study: str
    index: int
    tasks: tuple[Task, ...]

    @property
    def rule(self) -> str:
        """The Snakemake rule that runs this batch."""
        return f"simulate_{self.study}_{self.index}"

    @property
    def outputs(self) -> list[str]:
        return [task.output for task in self.tasks]

    @property
    def log(self) -> str:
        return f"{layout.RESULTS}/{self.study}/logs/simulate/batch-{self.index}.log"

    @property
    def seconds(self) -> float:
        return sum(estimated_seconds(task.spec) for task in self.tasks)

    def arguments(self) -> str:
        """The ``nnfield simulate`` arguments of every task, shell-quoted (a rule param, so a
        changed point reruns its batch)."""
        return " ".join(
            f"--spec {shlex.quote(t.spec.to_json())} --shard {t.shard} "
            f"--out {shlex.quote(t.output)}"
            for t in self.tasks
        )

    def runtime_minutes(self, attempt: int = 1) -> int:
        """SLURM walltime request: 5x the estimate, at least 10 minutes, times the attempt."""
        return attempt * max(10, math.ceil(5 * self.seconds / 60))


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
            for shard in range(spec.params["shards"]):
                task = Task(spec, shard)
                seconds = estimated_seconds(spec)
                if current and (cost + seconds > budget or len(current) >= most):
                    batches.append(Batch(study, _count(batches, study), tuple(current)))
                    current, cost = [], 0.0
                current.append(task)
                cost += seconds
        if current:
            batches.append(Batch(study, _count(batches, study), tuple(current)))
    return batches


def _count(batches: list[Batch], study: str) -> int:
    return sum(batch.study == study for batch in batches)
