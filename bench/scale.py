"""A 10^4-point sweep: DAG build time and aggregation time, each against a 10^2-point baseline.

The sweep is the hidden study with tiny ensembles (a 100 x 100 grid of contraction x noise), so
the per-point work is negligible and what is measured is the bookkeeping:
1. ``snakemake -n`` on the sweep (config expansion, validation, batch planning and task files,
   the DAG: one simulate job per batch, nnfield.batching);
2. ``nnfield analyze`` on 10^4 point files (read, check, per-point estimates, concatenation);
3. ``nnfield verify`` of the results (every file re-read and checked against the config; the
   figures are not drawn, so its verdict lists them as missing).
The point files are copies of one simulated point with their own names and parameters (the
analysis reads every file in full, so this costs exactly what real files would).  Each figure is
printed with the same measurement at 10^2 points and the ratio (10^4 / 10^2; linear scaling is
100).  Targets (issue 7): DAG < 30 s, aggregation < 60 s on 2 cores.

With ``--real`` the points are simulated for real instead: the whole workflow (one simulate job
per batch, analysis, the study's figures and the run record) runs on the sweep and on the
baseline, and the marginal cost per point (t_sweep - t_baseline) / (P_sweep - P_baseline) is
printed with the ratio of the two wall times (issue 22: 10^4 tiny points in under 10 minutes,
under 0.05 s per point).

With ``--dry-run`` nothing is simulated or analysed: ``snakemake -n`` plans the sweep and the
baseline (planning time and job count; issue 22: a 10^5-point sweep plans in under 60 s with
at most a few thousand jobs), and a second dry run through the SLURM profile counts the sbatch
submissions the plan would make (short simulate batches go 10 to a submission there).

Usage: python bench/scale.py [--points 10000] [--baseline 100] [--keep DIR] [--real | --dry-run]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def sweep_config(points: int) -> dict:
    side = round(np.sqrt(points))
    return {
        "studies": {
            "hidden": {
                "seed": 1, "networks": 20, "block_size": 2, "steps": 4, "time_blocks": 2,
                "burn_in": 0,
                "ensembles": [{
                    "name": "cycle", "weights": "cycle", "neurons": 3,
                    "contractions": np.linspace(0.1, 0.9, side).round(6).tolist(),
                    "noises": np.linspace(0.1, 2.0, points // side).round(6).tolist(),
                }],
            }
        }
    }  # fmt: skip


def dag_seconds(workdir: Path, config: dict) -> tuple[float, int]:
    """Wall seconds of `snakemake -n` restricted to the hidden study, and its job count."""
    (workdir / "sweep.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "results/hidden/hidden.nc", "-s",
           str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", "sweep.yaml",
           "-n", "--quiet", "rules"]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=True)
    seconds = time.perf_counter() - start
    totals = re.findall(r"^total\s+(\d+)", run.stdout + run.stderr, flags=re.M)
    jobs = int(totals[0]) if totals else -1
    return seconds, jobs


def slurm_submissions(workdir: Path) -> int:
    """sbatch submissions of the sweep in ``workdir`` under `--profile profiles/slurm`, counted
    from a dry run's job listing (a group job is one submission, as is each ungrouped job)."""
    cmd = [sys.executable, "-m", "snakemake", "results/hidden/hidden.nc", "-s",
           str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", "sweep.yaml",
           "--profile", str(REPO / "profiles/slurm"), "-n"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=True)
    text = run.stdout + run.stderr
    return len(re.findall(r"^rule \S+:$", text, flags=re.M)) + len(
        re.findall(r"\] Group job \S+ ", text)
    )


def main_dry(points: int, baseline: int, root: Path) -> None:
    """Planning time, job count and SLURM submissions of the sweep and the baseline."""
    runs = {}
    for label, count in (("baseline", baseline), ("sweep", points)):
        work = root / label
        work.mkdir()
        seconds, jobs = dag_seconds(work, sweep_config(count))
        again, _ = dag_seconds(work, sweep_config(count))  # task files exist: a re-plan
        submissions = slurm_submissions(work)
        runs[label] = {"points": count, "jobs": jobs, "plan_s": seconds, "replan_s": again,
                       "slurm_submissions": submissions}  # fmt: skip
        print(f"{label}: {count} points, {jobs} jobs: snakemake -n {seconds:.1f} s (again, "
              f"task files written: {again:.1f} s); {submissions} SLURM submissions",
              flush=True)  # fmt: skip
    base, big = runs["baseline"], runs["sweep"]
    plan_ratio, job_ratio = big["plan_s"] / base["plan_s"], big["jobs"] / base["jobs"]
    print(f"ratio {big['points']}/{base['points']} points: planning {plan_ratio:.1f}x, "
          f"jobs {job_ratio:.1f}x")  # fmt: skip
    print(json.dumps(runs))


def write_points(workdir: Path, config: dict) -> list[Path]:
    """One simulated point, copied under every point name of the sweep."""
    from nnfield import config as nnconfig
    from nnfield.engine import layout
    from nnfield.engine.store import write_dataset
    from nnfield.studies import load

    cfg = nnconfig.validate(config)
    specs = nnconfig.expand(cfg)["hidden"]
    first = next(iter(specs.values()))
    template = load("hidden").simulate(first, 0)
    paths = []
    for name, spec in specs.items():
        ds = template.copy()
        ds.attrs.update(point=name, params=spec.to_json(), config_sha256=spec.sha256)
        path = workdir / layout.point_path(spec)
        write_dataset(ds, path)
        paths.append(path)
    nnconfig.write_record(cfg, workdir / layout.CONFIG_RECORD)
    return paths


def aggregate_seconds(workdir: Path, paths: list[Path]) -> float:
    listing = workdir / "points.txt"
    listing.write_text("\n".join(map(str, paths)))
    (plan,) = (workdir / "results/hidden/plans").glob("*.json")  # written by snakemake -n
    cmd = [sys.executable, "-m", "nnfield", "analyze", "--study", "hidden", "--out",
           str(workdir / "results/hidden/hidden.nc"), "--point-list", str(listing), "--plan",
           str(plan)]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def verify_seconds(workdir: Path) -> tuple[float, str]:
    """Wall seconds of `nnfield verify results` and its verdict line."""
    cmd = [sys.executable, "-m", "nnfield", "-q", "verify", "results"]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - start
    if run.returncode not in (0, 1):
        raise RuntimeError(run.stderr)
    return seconds, run.stdout.splitlines()[0]


def end_to_end(workdir: Path, config: dict) -> tuple[float, int]:
    """Wall seconds of the whole workflow (`snakemake --cores 2`) on ``config``, and the number
    of simulate jobs it ran (one log per job)."""
    (workdir / "sweep.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", "sweep.yaml", "--cores", "2",
           "--quiet", "all"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=True)
    seconds = time.perf_counter() - start
    jobs = len(list((workdir / "results/hidden/logs/simulate").glob("*.log")))
    return seconds, jobs


def main_real(points: int, baseline: int, root: Path) -> None:
    """End-to-end runs of the sweep and the baseline, and the marginal cost per point."""
    runs = {}
    for label, count in (("baseline", baseline), ("sweep", points)):
        work = root / label
        work.mkdir()
        seconds, jobs = end_to_end(work, sweep_config(count))
        runs[label] = {"points": count, "simulate_jobs": jobs, "seconds": seconds}
        print(f"{label}: {count} points end to end in {seconds:.1f} s ({jobs} simulate jobs, "
              f"{seconds / count:.4f} s per point)", flush=True)  # fmt: skip
    base, big = runs["baseline"], runs["sweep"]
    marginal = (big["seconds"] - base["seconds"]) / (big["points"] - base["points"])
    print(f"ratio {big['points']}/{base['points']} points: {big['seconds'] / base['seconds']:.1f}x "
          f"wall time; marginal cost {marginal:.4f} s per point")  # fmt: skip
    print(json.dumps(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="keep the work directory here")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--real", action="store_true",
                      help="simulate the points: the whole workflow, end to end")  # fmt: skip
    mode.add_argument("--dry-run", action="store_true",
                      help="plan only: job count, planning time, SLURM submissions")  # fmt: skip
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nnfield-scale-"))
    results = {}
    try:
        if args.real:
            main_real(args.points, args.baseline, root)
            return
        if args.dry_run:
            main_dry(args.points, args.baseline, root)
            return
        for label, points in (("baseline", args.baseline), ("sweep", args.points)):
            work = root / label
            work.mkdir()
            config = sweep_config(points)
            dag, jobs = dag_seconds(work, config)
            start = time.perf_counter()
            paths = write_points(work, config)
            written = time.perf_counter() - start
            agg = aggregate_seconds(work, paths)
            check, verdict = verify_seconds(work)
            results[label] = {"points": len(paths), "jobs": jobs, "dag_s": dag, "aggregate_s": agg,
                              "verify_s": check}  # fmt: skip
            print(
                f"{label}: {len(paths)} points, {jobs} jobs: snakemake -n {dag:.1f} s, "
                f"analyze {agg:.1f} s, verify {check:.1f} s (writing the files took "
                f"{written:.1f} s)\n  verify: {verdict}",
                flush=True,
            )
        base, big = results["baseline"], results["sweep"]
        dag_ratio = big["dag_s"] / base["dag_s"]
        agg_ratio = big["aggregate_s"] / base["aggregate_s"]
        verify_ratio = big["verify_s"] / base["verify_s"]
        print(
            f"ratio {big['points']}/{base['points']} points: DAG {dag_ratio:.1f}x, "
            f"aggregation {agg_ratio:.1f}x, verify {verify_ratio:.1f}x"
        )
        print(json.dumps(results))
    finally:
        if args.keep:
            shutil.copytree(root, args.keep, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
