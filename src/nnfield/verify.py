"""``nnfield verify``: re-read every result file and check it against the configuration.

For each study of the config: every point file (and shard file, where a point has several) is
read in full with netCDF4 (a truncated or corrupted file fails here), must carry the current
``schema_version``, the study, its point name, the ``config_sha256`` of the point's spec in the
config, the raw variables of the study and exactly its blocks, and every stored coordinate
must equal the spec's (``store.check_identity``); every file's content must match its digest
(``store``); the study dataset must have been made from exactly these points
(``store.points_sha256``) with the config's plan, analysis options included (``nnfield.plan``);
every figure must exist as a PDF and a PNG that names itself and that plan.  Non-finite networks
are totalled.  One verdict line per study.  The config defaults to the run record, written when
a run starts.

``remove_bad`` deletes every result file found inconsistent and what was made from it (merged
point, study dataset, figures), so that the next Snakemake run remakes exactly those under any
rerun trigger.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnfield import config as nnconfig
from nnfield import plan as nnplan
from nnfield.engine import layout
from nnfield.engine.blocks import shard_blocks
from nnfield.engine.parallel import map_in_processes
from nnfield.studies import load

MAGIC = {"pdf": b"%PDF", "png": b"\x89PNG"}


def figure_tag(figure: str, plan_sha256: str) -> str:
    """The text every figure carries in its metadata (PDF Subject, PNG Description): its name
    and the hash of the plan its study dataset was made with."""
    return f"nnfield figure {figure} of study plan {plan_sha256}"


MIN_PARALLEL = 50
"""Files from which the checks run in worker processes."""


@dataclass
class Verdict:
    """The outcome for one study: what was checked and what is wrong."""

    study: str
    points: int = 0
    files: int = 0
    figures: int = 0
    nonfinite: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)
    """Result files found inconsistent (removing them makes Snakemake remake them)."""

    def add(self, problem: str, path: str | os.PathLike | None = None) -> None:
        self.problems.append(problem)
        if path is not None:
            self.bad_files.append(str(path))

    @property
    def consistent(self) -> bool:
        return not self.problems

    def line(self) -> str:
        head = (f"{self.study}: {self.points} points, {self.files} data files, study dataset, "
                f"{self.figures} figure files")  # fmt: skip
        if self.nonfinite:
            head += f", {self.nonfinite} non-finite networks excluded"
        if self.refused:
            head += f", {self.refused} point(s) refused by the analysis (see its log)"
        if self.consistent:
            return f"{head}: consistent"
        return f"{head}: INCONSISTENT ({len(self.problems)} problem(s))"


def _check_file(job: tuple[str, str, str, str, list[int], tuple[str, ...]]) -> tuple[str, int]:
    """('' or the problem, non-finite networks) for one point or shard file (its stored
    coordinates are checked by ``read_raw``)."""
    from nnfield.engine.store import DataFileError, read_raw

    path, study, point, sha, blocks, required = job
    try:
        raw = read_raw(path, study=study, required=required)
    except DataFileError as err:
        return str(err), 0
    if str(raw.attrs.get("point")) != point:
        return f"{path}: holds point {raw.attrs.get('point')!r}, expected {point!r}", 0
    if str(raw.attrs.get("config_sha256")) != sha:
        return (f"{path}: made with another configuration of point {point} (config_sha256 "
                "differs)", 0)  # fmt: skip
    got = np.asarray(raw.variables["block"]).tolist()
    if got != blocks:
        return f"{path}: holds blocks {got[:5]}..., expected {blocks[:5]}... ({len(blocks)})", 0
    nonfinite = 0
    if "nonfinite" in raw:
        nonfinite = int(np.sum(raw["nonfinite"].values))
    elif "finite" in raw:
        nonfinite = int(np.sum(1 - raw["finite"].values))
    return "", nonfinite


def _file_jobs(study: str, specs: Sequence[nnconfig.PointSpec], required: tuple[str, ...]):
    """(path, study, point, sha, blocks, required) for every point and shard file to check;
    intermediate shard files of multi-shard points are checked where they still exist."""
    for spec in specs:
        p = spec.params
        n_blocks = p["networks"] // p["block_size"]
        yield (layout.point_path(spec), study, spec.name, spec.sha256, list(range(n_blocks)),
               required)  # fmt: skip
        if p["shards"] > 1:
            for k in range(p["shards"]):
                path = layout.shard_path(study, spec.name, k)
                if os.path.exists(path):
                    blocks = list(shard_blocks(n_blocks, k, p["shards"]))
                    yield path, study, spec.name, spec.sha256, blocks, required


def verify_study(
    study: str,
    specs: dict[str, nnconfig.PointSpec],
    cfg: Mapping | None = None,
    workers: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> Verdict:
    """Check one study's files (paths relative to the working directory) against its specs and
    its validated config block ``cfg`` (analysis options, figures)."""
    from nnfield.engine.store import DataFileError, points_sha256, read_raw

    cfg = dict(cfg or {})
    analysis = load(study).analysis_options(cfg)
    verdict = Verdict(study, points=len(specs))
    jobs = list(_file_jobs(study, list(specs.values()), load(study).raw_variables()))
    checked = map_in_processes(_check_file, jobs, workers, MIN_PARALLEL, progress,
                               "checked {done}/{total} files")  # fmt: skip
    points_bad = False
    for job, (problem, nonfinite) in zip(jobs, checked, strict=True):
        verdict.files += 1
        verdict.nonfinite += nonfinite
        if problem:
            points_bad = True
            verdict.add(problem, job[0] if os.path.exists(job[0]) else None)
            spec = specs[job[2]]
            if job[0] != layout.point_path(spec):  # a bad shard: the merged point goes too
                verdict.bad_files.append(layout.point_path(spec))
    plan_sha = nnplan.plan_sha256(nnplan.plan_text(study, specs.values(), analysis))
    path = layout.study_path(study)
    try:
        attrs = read_raw(path, study=study).attrs
        verdict.refused = len([p for p in str(attrs.get("refused_points", "")).split("; ") if p])
        expected = points_sha256((name, spec.sha256) for name, spec in specs.items())
        if str(attrs.get("config_sha256")) != expected:
            verdict.add(f"{path}: made from other points than the configuration's "
                        "(config_sha256 differs)", path)  # fmt: skip
        elif str(attrs.get("plan_sha256")) != plan_sha:
            verdict.add(f"{path}: made with other analysis options than the configuration's "
                        f"({attrs.get('analysis_options')})", path)  # fmt: skip
    except DataFileError as err:
        verdict.add(str(err), path if os.path.exists(path) else None)
    if points_bad:  # remade points must reach the dataset: Snakemake does not rerun a job for a
        verdict.bad_files.append(path)  # missing input while its outputs look up to date
    for figure in load(study).figures_for(cfg):
        for ext in layout.FIGURE_FORMATS:
            path = Path(layout.figure_path(figure, ext))
            if points_bad:
                verdict.bad_files.append(str(path))
            try:
                data = path.read_bytes()
            except OSError:
                verdict.add(f"{path}: figure missing")
                continue
            if not data.startswith(MAGIC[ext]):
                verdict.add(f"{path}: not a {ext.upper()} file", path)
            elif figure_tag(figure, plan_sha).encode() not in data:
                verdict.add(f"{path}: drawn from another study dataset than the "
                            "configuration's", path)  # fmt: skip
            else:
                verdict.figures += 1
    return verdict


def verify(
    results: str | os.PathLike,
    config_path: str | os.PathLike | None = None,
    workers: int | None = None,
    report: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
    remove_bad: bool = False,
) -> bool:
    """Verify the results directory ``results`` (its parent is the run's working directory)
    against ``config_path`` (default: the run's own record, RESULTS/config.yaml, written when a
    run starts); report one verdict line per study, then its problems.
    With ``remove_bad``, delete the inconsistent result files.  True if every study is
    consistent."""
    results = Path(os.path.abspath(results))  # a symlink to scratch space is fine
    if not results.is_dir():
        raise nnconfig.ConfigError(f"results directory {results} not found")
    if results.name != layout.RESULTS:
        raise nnconfig.ConfigError(f"{results}: expected the workflow's '{layout.RESULTS}' "
                                   "directory")  # fmt: skip
    config_path = Path(config_path) if config_path else results / Path(layout.CONFIG_RECORD).name
    cfg = nnconfig.load(config_path)
    here = os.getcwd()
    os.chdir(results.parent)  # layout paths are relative to the run's working directory
    try:
        verdicts = [
            verify_study(study, specs, cfg["studies"][study], workers, progress)
            for study, specs in nnconfig.expand(cfg).items()
        ]
        removed = _remove(sorted({f for v in verdicts for f in v.bad_files})) if remove_bad else 0
    finally:
        os.chdir(here)
    for verdict in verdicts:
        report(verdict.line())
        for problem in verdict.problems[:20]:
            report(f"    {problem}")
        if len(verdict.problems) > 20:
            report(f"    ... and {len(verdict.problems) - 20} more")
    if remove_bad:
        report(f"removed {removed} result file(s), the inconsistent ones and what was made "
               "from them: run snakemake to remake them")  # fmt: skip
    elif any(v.bad_files for v in verdicts):
        report(f"to remake the inconsistent files and what was made from them: nnfield verify "
               f"{results.name} --remove-bad, then snakemake again")  # fmt: skip
    return all(v.consistent for v in verdicts)


def _remove(paths: list[str]) -> int:
    """Delete the files that exist; how many were deleted."""
    removed = 0
    for path in map(Path, paths):
        if path.exists():
            path.unlink()
            removed += 1
    return removed
