"""Each study's plan: the points (name and spec hash) and the analysis options of the config the
workflow was last evaluated with, in ``results/<study>/plan.json``.

The plan is rewritten only when its content changes, so its modification time is when the study
last changed.  It is an input of the study's analyze job, so a changed sweep or analysis option
reruns the analysis under any Snakemake rerun trigger, with or without ``.snakemake`` metadata.
Readers hold every file to it:

- a simulate job refuses to write a file whose spec the plan no longer holds (an orphaned job,
  whose Snakemake was killed, finishing after the config changed);
- ``nnfield analyze --plan`` refuses point files of another spec, the same point twice, and
  missing points;
- ``nnfield verify`` compares the plan with the config it checks against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from nnfield import SCHEMA_VERSION
from nnfield.atomic import write_text_if_changed
from nnfield.config import ConfigError, PointSpec

REMEDY = "run `nnfield verify results --remove-bad`, then snakemake again"
"""What to do about a result file that does not match the plan (it removes exactly the files
that do not match, so that Snakemake remakes them)."""


def plan_text(study: str, specs: Iterable[PointSpec], analysis: Mapping) -> str:
    """The plan file's text for a study's specs and analysis options."""
    content = {
        "study": study,
        "schema_version": SCHEMA_VERSION,
        "analysis": dict(analysis),
        "points": {spec.name: spec.sha256 for spec in specs},
    }
    return json.dumps(content, sort_keys=True, indent=0) + "\n"


def write_plan(path: str | os.PathLike, text: str) -> bool:
    """Write a plan unless the file already holds it (its mtime is when the study last
    changed); True if written."""
    return write_text_if_changed(path, text)


def read_plan(path: str | os.PathLike) -> dict:
    """A plan file as written by :func:`plan_text`."""
    try:
        plan = json.loads(Path(path).read_text())
        if not isinstance(plan["points"], dict) or not isinstance(plan["analysis"], dict):
            raise TypeError("points and analysis must be mappings")
        return plan
    except OSError as err:
        raise ConfigError(f"{path}: plan file not readable ({err.strerror})") from err
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a plan file ({err}); run snakemake again") from err


_CACHE: dict[str, tuple[tuple[int, int], dict]] = {}


def current_sha(path: str | os.PathLike, point: str) -> str | None:
    """The spec hash the plan at ``path`` holds for ``point`` now (re-read when the file
    changes); None if there is no plan file or it does not name the point."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(str(path))
    if cached is None or cached[0] != stamp:
        cached = (stamp, read_plan(path))
        _CACHE[str(path)] = cached
    return cached[1]["points"].get(point)


def mismatches(files: Iterable[tuple[str, str, str]], plan: Mapping) -> list[str]:
    """What is wrong with a study's point files, given as (path, point, spec hash), against
    ``plan``: files of another spec or of no planned point, points given twice, planned points
    without a file.  Empty when the files are exactly the plan's points."""
    wanted = plan["points"]
    problems, seen = [], {}
    for path, point, sha in files:
        if point in seen:
            problems.append(f"{path}: point {point} is also in {seen[point]}")
            continue
        seen[point] = path
        if point not in wanted:
            problems.append(f"{path}: point {point} is not in the plan")
        elif sha != wanted[point]:
            problems.append(f"{path}: made with another spec of point {point} than the plan's "
                            "(an older or orphaned job wrote it)")  # fmt: skip
    problems += [f"point {point}: no file given" for point in wanted if point not in seen]
    return problems
