"""Command line: ``nnfield simulate|merge|analyze|figure|check-config|verify|info``.

These are the steps the Snakemake rules run; each writes its output atomically and exits non-zero
with a one-line message naming the offending file or config key on bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("nnfield")

DESCRIPTION = (
    "The steps the Snakemake workflow runs (simulate, merge, analyze, figure), and checks of "
    "configs and results. Each writes its output atomically and exits with status 2 and one "
    "error line naming the offending file or config key on bad input."
)


def enable_compilation_cache() -> str | None:
    """Let simulate jobs share compiled XLA programs across processes (points of the same
    shapes compile once per machine).  ``NNFIELD_JAX_CACHE`` names the directory (default
    ``$XDG_CACHE_HOME/nnfield/jax``); set it empty to disable.  Results do not depend on it."""
    path = os.environ.get("NNFIELD_JAX_CACHE")
    if path is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "nnfield", "jax")
    if not path:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def _prepare_device(wanted: str) -> None:
    """Set up JAX's platform and GPU memory policy for ``wanted`` (the config's ``device``); call
    before JAX creates its backend.  Variables the user has set win.

    - cpu: JAX runs on the CPU even where a CUDA build is installed (Snakemake reserved no GPU).
    - gpu: no preallocation (``XLA_PYTHON_CLIENT_PREALLOCATE=false``), so that simulate jobs
      sharing a GPU (a workstation runs several at once; SLURM gives each job its own) take
      the memory they use instead of 75% of the GPU each."""
    if wanted == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    else:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    shown = ("JAX_PLATFORMS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
             "CUDA_VISIBLE_DEVICES")  # fmt: skip
    log.info("device %s: %s", wanted,
             ", ".join(f"{k}={os.environ[k]}" for k in shown if k in os.environ))  # fmt: skip


def _check_device(wanted: str) -> None:
    """Fail early when the config asks for GPUs and JAX sees none (a month of cluster time
    silently on CPU is the worst outcome)."""
    import jax

    from nnfield.config import ConfigError

    backend = jax.default_backend()
    log.info("JAX backend %s, %d device(s): %s", backend, jax.device_count(),
             ", ".join(str(d) for d in jax.devices()))  # fmt: skip
    if wanted == "gpu" and backend != "gpu":
        raise ConfigError(
            f"config key 'device' is gpu, but JAX sees only {backend} devices: install the CUDA "
            "build (pip install -e '.[cuda]') and run on a GPU node, or set device: cpu"
        )


def _simulate(args) -> None:
    """One or more (spec, shard, out) tasks in this process (a batch: nnfield.batching); each
    file is written atomically as soon as its task is done, exactly as a job of its own would."""
    _prepare_device(args.device)
    from functools import partial

    from nnfield.config import ConfigError, PointSpec, check_spec
    from nnfield.engine import layout
    from nnfield.engine.store import write_dataset
    from nnfield.studies import load

    if args.tasks is not None:
        if args.spec or args.shard or args.out:
            raise ConfigError("simulate: give either --tasks FILE or --spec/--shard/--out")
        from nnfield.batching import read_task_file

        rows = read_task_file(args.tasks, digest=args.digest)
        if not rows:
            raise ConfigError(f"{args.tasks}: a batch task file with no tasks")
        specs, shards, outs = ([row[i] for row in rows] for i in range(3))
    else:
        specs, shards, outs = [PointSpec.from_json(t) for t in args.spec], args.shard, args.out
        for spec in specs:
            check_spec(spec)
        shards = shards or [0] * len(specs)
        if not specs or not (len(specs) == len(shards) == len(outs)):
            raise ConfigError(
                f"simulate: {len(specs)} --spec, {len(args.shard)} --shard and {len(outs)} "
                "--out options; give one --out (and --shard, or none for shard 0) per --spec"
            )
    from nnfield.engine.precision import enable_x64

    enable_x64()  # the samplers require it; before any point
    enable_compilation_cache()
    if os.environ.get("SLURM_JOB_ID"):
        log.info("running in SLURM job %s on %s", os.environ["SLURM_JOB_ID"],
                 os.environ.get("SLURMD_NODENAME", "?"))  # fmt: skip
    _check_device(args.device)
    for i, (spec, shard, out) in enumerate(zip(specs, shards, outs, strict=True)):
        log.info("simulate [%d/%d] %s/%s shard %d", i + 1, len(specs), spec.study, spec.name,
                 shard)  # fmt: skip
        plan_file = Path(layout.plan_path(spec.study)) if args.tasks is not None else None
        _refuse_unplanned(plan_file, spec.name, spec.sha256, out)
        try:
            ds = load(spec.study).simulate(spec, shard, progress=log.info)
        except KeyError as err:  # a hand-written --spec (the workflow's specs are complete)
            raise ConfigError(f"point spec {spec.study}/{spec.name}: missing parameter "
                              f"{err}") from err  # fmt: skip
        # last check just before the rename: the config may have changed meanwhile
        check = partial(_refuse_unplanned, plan_file, spec.name, spec.sha256, out)
        write_dataset(ds, out, before_rename=check)
        log.info("wrote %s", out)


def _refuse_unplanned(plan_file: Path | None, point: str, sha: str, out: Path) -> None:
    """Refuse to write a file the workflow's current plan does not ask for (paths are relative
    to the workflow's directory, as in a batch's task file): a job whose
    Snakemake was killed (an orphan, which on SLURM may run on for hours) must never overwrite
    what a newer run of another config wrote."""
    from nnfield.config import ConfigError
    from nnfield.plan import current_sha

    if plan_file is None or not plan_file.exists():
        return
    if current_sha(plan_file, point) != sha:
        raise ConfigError(
            f"not writing {out}: the workflow's current plan {plan_file} no longer holds this "
            f"spec of point {point} (this job was planned from another config, and its "
            "Snakemake was stopped); nothing written"
        )


def _merge(args) -> None:
    from functools import partial

    from nnfield.engine import layout
    from nnfield.engine.store import DataFileError, read_dataset, write_dataset
    from nnfield.plan import REMEDY
    from nnfield.studies import load

    study = load(args.study)
    required = study.raw_variables()
    shards = [read_dataset(p, study=args.study, required=required) for p in args.shards]
    for path, ds in zip(args.shards, shards, strict=True):
        if args.expect and str(ds.attrs["config_sha256"]) != args.expect:
            raise DataFileError(
                f"{path}: made with another spec of point {ds.attrs['point']} than the "
                f"config's (an older or orphaned job wrote it); {REMEDY}"
            )
    merged = study.merge(shards)
    plan_file = Path(layout.plan_path(args.study)) if args.expect else None
    point = str(merged.attrs["point"])
    check = partial(_refuse_unplanned, plan_file, point, str(args.expect), args.out)
    write_dataset(merged, args.out, before_rename=check)  # an orphaned merge writes nothing
    log.info("merged %d shard(s) into %s", len(shards), args.out)


def _analyze(args) -> None:
    from functools import partial

    from nnfield.config import ConfigError
    from nnfield.engine.precision import enable_x64
    from nnfield.engine.store import write_dataset
    from nnfield.plan import read_plan
    from nnfield.studies import load

    enable_x64()  # analyses may run JAX for exact values
    study = load(args.study)
    plan = read_plan(args.plan, args.digest) if args.plan else None
    if plan is not None and args.options:
        raise ConfigError("analyze: give --plan (which holds the analysis options) or --options")
    if plan is not None:
        options = plan["analysis"]
    else:
        options = json.loads(args.options) if args.options else {}
    paths = list(args.points)
    if args.point_list:
        try:
            lines = args.point_list.read_text().split("\n")
        except OSError as err:
            raise ConfigError(f"--point-list {args.point_list}: {err.strerror}") from err
        paths += [Path(line) for line in lines if line.strip()]
    if not paths:
        raise ConfigError("analyze needs point files (POINTS or --point-list)")
    _check_points(paths, plan)  # before any work: exactly the plan's points (or each once)
    ds = study.analyze_files(paths, options, progress=log.info)
    ds.attrs["analysis_options"] = json.dumps(options, sort_keys=True)
    ds.attrs["plan_sha256"] = plan["sha256"] if plan is not None else ""
    check = partial(_refuse_other_plan, args.study, ds.attrs["plan_sha256"], args.out)
    write_dataset(ds, args.out, before_rename=check)  # an orphaned analysis writes nothing
    log.info("wrote %s", args.out)


def _refuse_other_plan(study: str, plan_sha: str, out) -> None:
    """Refuse to write a study dataset or figure of a plan other than the workflow's current one
    (an orphaned analysis or figure job finishing after a run of another config started)."""
    from nnfield.config import ConfigError
    from nnfield.plan import current_plan_sha256

    current = current_plan_sha256(study)
    if plan_sha and current is not None and current != plan_sha:
        raise ConfigError(
            f"not writing {out}: made from another plan of study {study} than the workflow's "
            "current one (this job was planned from another config, and its Snakemake was "
            "stopped); nothing written"
        )


def _check_points(paths: list[Path], plan: dict | None) -> None:
    """Refuse point files that are not exactly the plan's points (or, without a plan, the same
    point twice), naming them and the command that fixes it."""
    from nnfield.engine.parallel import map_in_processes
    from nnfield.engine.store import DataFileError, read_identity
    from nnfield.plan import REMEDY, mismatches

    found = map_in_processes(read_identity, [str(p) for p in paths], None, 500, log.info,
                             "checked {done}/{total} point files")  # fmt: skip
    files = [(str(path), *ids) for path, ids in zip(paths, found, strict=True)]
    if plan is None:
        plan = {"points": {point: sha for _, point, sha in files}}
    problems = mismatches(files, plan)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataFileError(f"{'; '.join(problems[:3])}{more}; {REMEDY}")


def _figure(args) -> None:
    from functools import partial

    import matplotlib

    matplotlib.use("Agg")  # files only, no display: before pyplot is imported
    from nnfield.engine.store import read_dataset
    from nnfield.figures import style
    from nnfield.studies import figure_study, load
    from nnfield.verify import figure_tag

    drawn_by = figure_study()
    if args.name not in drawn_by:
        raise ValueError(f"unknown figure {args.name!r}; known: {', '.join(drawn_by)}")
    study = drawn_by[args.name]
    ds = read_dataset(args.data, study=study)
    fig = load(study).draw(args.name, ds)
    plan_sha = str(ds.attrs.get("plan_sha256", ""))
    style.save(fig, args.out, subject=figure_tag(args.name, plan_sha),
               before_rename=partial(_refuse_other_plan, study, plan_sha, args.out))  # fmt: skip
    log.info("wrote %s", ", ".join(args.out))


def _check_config(args) -> None:
    from nnfield import config

    cfg = config.load_as_workflow(args.config, replace=args.replace_workflow_config)
    points = config.expand(cfg)
    for study, pts in points.items():
        print(f"{study}: {len(pts)} points")


def _verify(args) -> int:
    from nnfield.verify import verify

    ok = verify(args.results, args.config, args.workers, progress=log.info,
                remove_bad=args.remove_bad)  # fmt: skip
    return 0 if ok else 1


def _info(args) -> None:
    import importlib.metadata as md

    import jax

    import nnfield

    print(f"nnfield {nnfield.__version__} (schema {nnfield.SCHEMA_VERSION})")
    for pkg in ("jax", "jaxlib", "numpy", "scipy", "xarray", "netCDF4", "snakemake"):
        try:
            print(f"  {pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"  {pkg} (not installed)")
    print(f"JAX backend: {jax.default_backend()}")
    for dev in jax.devices():
        print(f"  device {dev.id}: {dev.platform} {getattr(dev, 'device_kind', '')}")


def build_parser() -> argparse.ArgumentParser:
    from nnfield import __version__

    parser = argparse.ArgumentParser(prog="nnfield", description=DESCRIPTION)
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument("--version", action="version", version=f"nnfield {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="raw block sums of one or more points' shards")
    p.add_argument("--tasks", type=Path,
                   help="a batch task file (nnfield.batching), instead of --spec etc.")  # fmt: skip
    p.add_argument("--digest", help="sha256 the --tasks file must have (from the workflow)")
    p.add_argument("--spec", action="append", default=[],
                   help="point spec as JSON; repeat for several points in one process")  # fmt: skip
    p.add_argument("--shard", type=int, action="append", default=[],
                   help="shard of the matching --spec (default 0)")  # fmt: skip
    p.add_argument("--out", type=Path, action="append", default=[],
                   help="output file of the matching --spec")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: fail unless JAX sees a GPU (the config's `device`)")  # fmt: skip
    p.set_defaults(func=_simulate)

    p = sub.add_parser("merge", help="join the shards of one point")
    p.add_argument("--study", required=True, help="the study the shards belong to")
    p.add_argument("--expect", help="the point's spec hash every shard must carry")
    p.add_argument("--out", required=True, type=Path, help="the merged point file to write")
    p.add_argument("shards", nargs="+", type=Path, help="the point's shard files")
    p.set_defaults(func=_merge)

    p = sub.add_parser("analyze", help="estimates, errors and theory for a whole study")
    p.add_argument("--study", required=True, help="the study the point files belong to")
    p.add_argument("--options", default="", help="analysis options as JSON")
    p.add_argument("--plan", type=Path,
                   help="the study's plan (results/STUDY/plans/*.json): its analysis options, "
                        "and the points (with spec hashes) the files must be, exactly")  # fmt: skip
    p.add_argument("--digest", help="sha256 the --plan file must have (from the workflow)")
    p.add_argument("--out", required=True, type=Path, help="the study dataset to write")
    p.add_argument("--point-list", type=Path,
                   help="a file naming one point file per line (for sweeps too large for a "
                        "command line), in addition to POINTS")  # fmt: skip
    p.add_argument("points", nargs="*", type=Path, help="point files (one per point)")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("figure", help="draw one figure from its study dataset")
    p.add_argument("--name", required=True, help="the figure (e.g. npoint_scaling)")
    p.add_argument("--data", required=True, type=Path, help="its study dataset")
    p.add_argument("--out", required=True, nargs="+", help="files to write (.pdf, .png)")
    p.set_defaults(func=_figure)

    p = sub.add_parser(
        "check-config", help="validate a config as Snakemake would run it; count its points"
    )
    p.add_argument("config", type=Path,
                   help="a YAML config file, merged into ./config/config.yaml as `snakemake "
                        "--configfile` merges it (run it where you run snakemake)")  # fmt: skip
    p.add_argument("--replace-workflow-config", action="store_true",
                   help="check the file alone, as `snakemake --replace-workflow-config` runs "
                        "it")  # fmt: skip
    p.set_defaults(func=_check_config)

    p = sub.add_parser(
        "verify",
        help="re-read every result file and check it against the "
        "config; one verdict line per study (exit 1 if any is inconsistent)",
    )
    p.add_argument("results", nargs="?", type=Path, default=Path("results"),
                   help="the workflow's results directory (default: results)")  # fmt: skip
    p.add_argument("--config", type=Path,
                   help="config to check against (default: RESULTS/config.yaml, the record of "
                        "the latest run started)")  # fmt: skip
    p.add_argument("--workers", type=int, help="processes reading files (default: all CPUs)")
    p.add_argument("--remove-bad", action="store_true",
                   help="delete the result files found inconsistent, so that the next snakemake "
                        "run remakes exactly them")  # fmt: skip
    p.set_defaults(func=_verify)

    p = sub.add_parser("info", help="versions and the devices JAX sees")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    from nnfield.config import ConfigError
    from nnfield.engine.store import DataFileError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataFileError, ValueError) as err:
        log.error("%s", err)
        return 2
    except OSError as err:  # a full disk, a directory where a file should be, permissions
        from nnfield.engine.atomic import describe_write_failure

        log.error("%s", describe_write_failure(err.filename or "?", err))
        return 2


if __name__ == "__main__":
    sys.exit(main())
