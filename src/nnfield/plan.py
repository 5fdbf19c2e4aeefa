"""Each study's plan: its points (name and spec hash) and its analysis options.

A plan lives in a file named by its content, ``results/<study>/plans/<hash>.json``, written when
the workflow is evaluated (dry runs included) unless it exists intact (a damaged one is
rewritten); files no run uses are removed when a run ends, as are the simulate batches' task
files.  The plan file is
an input of the study's analyze job, which reads exactly the plan its DAG was built with (its
hash is checked), so a changed sweep or analysis option reruns the analysis under any Snakemake
rerun trigger, with or without ``.snakemake`` metadata, and a dry run of another config in the
same directory changes nothing a running workflow reads.

When a run starts (``onstart``: after Snakemake took its lock, never on a dry run), the current
plan is also copied to ``results/<study>/plan.json``.  Readers hold every file to it:

- a simulate or merge job refuses to write a file whose spec the current plan no longer holds,
  and an analyze or figure job one of another plan (an orphaned job, whose Snakemake was
  killed, finishing after a run of another config started);
- ``nnfield analyze --plan`` refuses point files of another spec, the same point twice, and
  missing points, before it analyses anything;
- the study dataset records the plan's hash (``plan_sha256``), and its figures carry it, which
  ``nnfield verify`` compares with the config's.

The run record ``results/config.yaml`` is likewise the output of a rule whose input is a
content-named copy, ``results/records/<hash>.yaml``, so that a changed config is always a run.

If a study's plan file already exists when the workflow is evaluated but is not the current one
(a config reverted after a run of another config), it is touched, so that the analysis made from
the other plan is rerun (it then refuses the other config's files, naming the fix).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from nnfield import SCHEMA_VERSION
from nnfield.config import ConfigError, PointSpec
from nnfield.engine import layout
from nnfield.engine.atomic import atomic_path, write_text_if_changed

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


def plan_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plan_file(study: str, text: str) -> str:
    """Where the plan with this text lives (named by its hash)."""
    return f"{layout.RESULTS}/{study}/plans/{plan_sha256(text)[:16]}.json"


def write_plan(study: str, text: str) -> bool:
    """Write the study's plan file unless it exists (never rewritten); if it exists but is not
    the current plan (``results/<study>/plan.json``), touch it so that an analysis made from
    another plan is rerun.  True if written or touched."""
    return _write_content_named(plan_file(study, text), text, layout.plan_path(study), False)


def _write_content_named(path: str, text: str, current: str, touch_without_current: bool) -> bool:
    """Write ``text`` to the content-named ``path`` unless it holds it intact (a damaged file is
    rewritten); touch an intact one when the file ``current`` holds other text (or, with
    ``touch_without_current``, is missing), so that the jobs reading ``path`` rerun.  True if
    written or touched."""
    target = Path(path)
    try:
        intact = target.read_text() == text
    except (OSError, UnicodeDecodeError):
        intact = False
    if not intact:
        with atomic_path(target, remove_stale=False) as tmp:
            tmp.write_text(text)
        return True
    try:
        now = Path(current).read_text()
    except OSError:
        now = None
    if (now is None and touch_without_current) or (now is not None and now != text):
        os.utime(target)
        return True
    return False


def current_plan_sha256(study: str) -> str | None:
    """Hash of the study's current plan (None without one: no workflow run here)."""
    try:
        return plan_sha256(Path(layout.plan_path(study)).read_text())
    except OSError:
        return None


def record_file(text: str) -> str:
    """Where a run record with this text is kept (named by its hash; ``layout.CONFIG_RECORD``
    is a copy made by the workflow's ``record`` rule)."""
    return f"{layout.RESULTS}/records/{plan_sha256(text)[:16]}.yaml"


def write_record_file(text: str) -> None:
    """Write the content-named record unless it holds ``text``; touch it when the run record
    (``layout.CONFIG_RECORD``) is another config's, so that the ``record`` rule reruns even
    when nothing else has to (a config that adds or removes no work)."""
    _write_content_named(record_file(text), text, layout.CONFIG_RECORD, True)


def copy_record(source: str, record: str, log: str) -> None:
    """The ``record`` rule: copy the content-named record to the run record, always rewritten
    (so it is newer than its input), atomically."""
    with atomic_path(record) as tmp:
        tmp.write_text(Path(source).read_text())
    Path(log).write_text(f"wrote {record} from {source}\n")


def remove_stale_records(text: str) -> None:
    """Delete the content-named records other than ``text``'s (after a run)."""
    _remove_other_files(Path(layout.RESULTS, "records"), "*.yaml", Path(record_file(text)))


def make_current(study: str, text: str) -> bool:
    """Record ``text`` as the study's current plan (when a run starts); True if changed."""
    return write_text_if_changed(layout.plan_path(study), text)


def remove_stale(plans: Mapping[str, str]) -> list[Path]:
    """Delete the plan files of the given studies other than their plan's (after a run)."""
    removed = []
    for study, text in plans.items():
        folder = Path(layout.RESULTS, study, "plans")
        removed += _remove_other_files(folder, "*.json", Path(plan_file(study, text)))
    return removed


def _remove_other_files(folder: Path, pattern: str, keep: Path) -> list[Path]:
    removed = []
    for path in folder.glob(pattern):
        if path != keep:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_plan(path: str | os.PathLike, digest: str | None = None) -> dict:
    """A plan file as written by :func:`plan_text` (with ``digest``: refused unless its text
    has that sha256), with its hash under ``sha256``."""
    try:
        text = Path(path).read_text()
        if digest is not None and plan_sha256(text) != digest:
            raise ConfigError(f"{path}: changed since the workflow planned it (content hash "
                              "differs); run snakemake again")  # fmt: skip
        plan = json.loads(text)
        plan["sha256"] = plan_sha256(text)
        if not isinstance(plan["points"], dict) or not isinstance(plan["analysis"], dict):
            raise TypeError("points and analysis must be mappings")
        return plan
    except OSError as err:
        raise ConfigError(f"{path}: plan file not readable ({err.strerror})") from err
    except ConfigError:
        raise
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
