"""Where the workflow keeps each file, relative to the working directory (one definition for
the Snakefile, ``nnfield verify`` and the benches)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnfield.config import PointSpec

RESULTS = "results"
CONFIG_RECORD = f"{RESULTS}/config.yaml"
"""The validated configuration of the latest run started (rewritten when it changes)."""


def shard_path(study: str, point: str, shard: int) -> str:
    return f"{RESULTS}/{study}/shards/{point}/shard-{shard}.nc"


def point_path(spec: PointSpec) -> str:
    """A point's raw data: the merged file, or for a single-shard point its only shard (no
    merge job: half the DAG, and no copy, for sweeps of many small points)."""
    if spec.params["shards"] == 1:
        return shard_path(spec.study, spec.name, 0)
    return f"{RESULTS}/{spec.study}/points/{spec.name}.nc"


def plan_path(study: str) -> str:
    """The study's current plan (nnfield.plan): a copy of the plan of the latest run started."""
    return f"{RESULTS}/{study}/plan.json"


def study_path(study: str) -> str:
    return f"{RESULTS}/{study}/{study}.nc"


def figure_path(figure: str, ext: str) -> str:
    return f"{RESULTS}/figures/{figure}.{ext}"


FIGURE_FORMATS = ("pdf", "png")
