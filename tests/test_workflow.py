"""End to end: a small Snakemake run through every rule, rerun, report, and a bad config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from nnfield import batching

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

TINY = """
batching: {max_points: 3}     # several simulate jobs per study
studies:
  npoint:
    seed: 1
    networks: 20000
    block_size: 1000
    shards: 2
    widths: [3, 30]
    families:
      - {name: relu, arch: relu, sigma_b0: 0.0, sigma_b1: 0.0, inputs: [0.5, 1.0]}
      - name: erf
        arch: erf
        input_dim: 2
        sigma_b0: 0.0
        inputs: [[-1.0, 0.5], [0.5, 0.5], [1.0, 0.0]]
  depth:
    seed: 2
    networks: 2000
    block_size: 200
    families:
      - {name: relu, activation: relu, inputs: [1.0, 0.5], widths: [4, 16], depths: [3, 5]}
  learning:
    seed: 3
    networks: 2000
    block_size: 200
    problems:
      - {name: q, hessian_eigenvalues: [1.0, 0.5], learning_rates: [0.1], temperatures: [0.5],
         initial: [narrow], steps: 20}
      - {name: ts, kind: teacher_student, widths: [2], optimizer: momentum, train_size: 8,
         learning_rates: [0.05], temperatures: [0.01], initial: [broad], steps: 20}
      - {name: b, kind: barrier, hessian_eigenvalues: [1.0], barrier: 2.0, barrier_width: 0.5,
         learning_rates: [0.2], temperatures: [0.5], initial: [broad], steps: 20}
      - {name: i, hessian_eigenvalues: [2.0, 0.5], data_disorder: 0.1, learning_rates: [0.1],
         temperatures: [0.05], initial: [broad], steps: 20}
  hidden:
    seed: 4
    networks: 200
    block_size: 20
    steps: 200
    burn_in: 50
    ensembles:
      - {name: mix, weights: mixture, neurons: 6, contractions: [0.5]}
      - {name: rings, weights: rings, neurons: 8, subsystems: 2, contractions: [0.5],
         couplings: [-0.1, 0.0, 0.05, 0.1]}
"""


# rules call the `nnfield` console script: put this interpreter's bin directory on PATH
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", "tiny.yaml", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=workdir,
                          env={**ENV, **(env or {})})  # fmt: skip


# `finished_run` (tests/conftest.py): the TINY run, once per session, shared by every file


@pytest.mark.slow
def test_learning_study_runs_through_the_workflow(finished_run):
    results = finished_run / "results"
    assert (results / "figures/learning_thermo.png").stat().st_size > 0
    ds = xr.open_dataset(results / "learning/learning.nc")
    assert ds.sizes["point"] == 4 and ds["pi_violation"].values.tolist() == [0] * 4
    assert sorted(ds["kind"].values.tolist()) == ["barrier", "quadratic", "quadratic",
                                                  "teacher_student"]  # fmt: skip
    assert np.isfinite(ds["entropy_function"].sel(point=ds["kind"] == "teacher_student")).all()
    disorder = np.isfinite(ds["information"]).any("step").values
    assert ds["information_violation"].values[disorder].tolist() == [0]
    estimators = dict(zip(ds["kind"].values, ds["entropy_estimator"].values, strict=True))
    assert estimators["barrier"].startswith("knn")
    # the figure regenerates from the NetCDF alone, and every panel shows data
    from matplotlib.container import ErrorbarContainer

    from nnfield.studies.learning.figures import learning_thermo

    fig = learning_thermo(ds)

    def drawn(ax):
        lines = any(line.get_gid() != "reference" and len(line.get_xdata()) for line in ax.lines)
        return lines or any(isinstance(c, ErrorbarContainer) for c in ax.containers)

    panels = fig.axes[: 5 * len(set(ds["problem"].values.tolist()))]  # twins come after
    empty = []
    for ax in panels:
        where = ax.get_position().bounds
        twins = [t for t in fig.axes[len(panels) :] if t.get_position().bounds == where]
        if not (drawn(ax) or any(drawn(t) for t in twins)):
            empty.append(ax.get_ylabel())
    assert not empty, empty


@pytest.mark.slow
def test_hidden_study_runs_through_the_workflow(finished_run):
    results = finished_run / "results"
    assert (results / "figures/hidden_entropy.png").stat().st_size > 0
    ds = xr.open_dataset(results / "hidden/hidden.nc")
    assert ds.sizes["point"] == 5 and ds.sizes["ring_fit"] == 1  # 3 distinct |eps|: c2 and c4
    assert np.isfinite(ds["annealed"].sel(point=ds["weights"] == "mixture")).all()
    assert (ds["nonfinite"] == 0).all()
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name


@pytest.mark.slow
def test_depth_study_runs_through_the_workflow(finished_run):
    results = finished_run / "results"
    for name in ("figures/depth_flow.pdf", "figures/depth_flow.png"):
        assert (results / name).stat().st_size > 0, name
    ds = xr.open_dataset(results / "depth/depth.nc")
    assert list(ds["width"].values) == [4, 16] and list(ds["depth"].values) == [3, 5]
    assert ds["layer"].size == 5  # layers beyond a point's depth are NaN
    assert bool(ds["K"].sel(depth=3, layer=5).isnull().all())
    np.testing.assert_allclose(ds["K"].sel(layer=1, depth=5), ds["K_theory"].sel(layer=1, depth=5))


@pytest.mark.slow
def test_run_produces_study_dataset_and_figures(finished_run):
    results = finished_run / "results"
    for name in ("figures/npoint_scaling.pdf", "figures/npoint_scaling.png", "npoint/npoint.nc"):
        assert (results / name).stat().st_size > 0, name
    ds = xr.open_dataset(results / "npoint/npoint.nc")
    assert set(ds["family"].values) == {"relu", "erf"}
    assert list(ds["width"].values) == [3, 30]
    # families with different input counts share the colex tuple axis (NaN-padded)
    assert ds.sizes["tuple4"] == 15 and bool(ds["G4"].sel(family="relu").isnull().any())
    for name, var in ds.variables.items():
        assert "long_name" in var.attrs and "units" in var.attrs, name
    shard = xr.open_dataset(results / "npoint/shards/family~relu/width~3/shard-1.nc")
    assert list(shard["block"].values) == list(range(10, 20))


@pytest.mark.slow
def test_second_run_has_nothing_to_do(finished_run):
    dry = snakemake(finished_run, "-n")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr


STEPS_EDIT = ("temperatures: [0.05], initial: [broad], steps: 20}",
              "temperatures: [0.05], initial: [broad], steps: 30}")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "triggers"),
    [(("temperatures: [0.05]", "temperatures: [0.07]"), "default"), (STEPS_EDIT, "mtime")],
)
def test_a_changed_point_reruns_only_its_batch(finished_run, tmp_path, edit, triggers):
    """One learning point edited (in a copy of the finished run): the dry run lists exactly the
    simulate batches whose task lists changed (one or two, not all), the learning analysis and
    its figures.  The steps edit keeps the point's name, batch and outputs, so under
    `--rerun-triggers mtime` only its new task file can tell Snakemake.  The dry run rewrites
    no existing task file."""
    from nnfield import batching
    from nnfield import config as nnconfig

    work = tmp_path / "copy"
    shutil.copytree(finished_run, work, symlinks=True)
    edited = TINY.replace(*edit)
    assert edited.count(edit[1]) == 1 and edited != TINY
    (work / "tiny.yaml").write_text(edited)
    stamps = {p: p.stat().st_mtime_ns for p in (work / "results").glob("*/batches/*.json")}
    extra = ["--rerun-triggers", "mtime"] if triggers == "mtime" else []
    dry = snakemake(work, "-n", *extra)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())

    def plan(text):
        cfg = nnconfig.validate(yaml.safe_load(text))
        return batching.plan(nnconfig.expand(cfg), cfg["batching"])

    old = {b.digest: b for b in plan(TINY)}
    changed = {b.rule for b in plan(edited) if b.digest not in old}
    learning = [b for b in plan(edited) if b.study == "learning"]
    assert 1 <= len(changed) <= 2 and len(changed) < len(learning)
    if edit is STEPS_EDIT:  # same name, same batch, same outputs: only the task file differs
        (rule,) = changed
        assert rule in {b.rule for b in old.values()}
    stats = dry.stdout[dry.stdout.index("Job stats") :]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M))
    assert {rule for rule in jobs if rule.startswith("simulate_")} == changed, stats
    assert jobs["analyze"] == "1" and "merge" not in jobs


@pytest.mark.slow
def test_simulate_resources_apply_to_every_batch(finished_run):
    """`--set-resources simulate:...` (as a GPU user writes it) reaches every batch rule; the
    default walltime comes from the batch's estimate."""
    from nnfield import batching
    from nnfield import config as nnconfig

    cfg = nnconfig.validate(yaml.safe_load(TINY))
    batches = batching.plan(nnconfig.expand(cfg), cfg["batching"])
    dry = snakemake(finished_run, "-n", "--forceall", "--set-resources", "simulate:mem_mb=1234",
                    "simulate:gpu_model=a100", "simulate:runtime=7")  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-2000:]
    lines = [line for line in dry.stdout.splitlines() if "resources:" in line]
    overridden = [line for line in lines if "mem_mb=1234" in line]
    assert len(overridden) == len(batches)
    assert all("gpu_model=a100" in line and "runtime=7," in line for line in overridden)
    dry = snakemake(finished_run, "-n", "--forceall")
    runtimes = sorted(int(m) for m in re.findall(r"resources: .*?runtime=(\d+), gpu=0", dry.stdout))
    assert runtimes == sorted(b.runtime_minutes() for b in batches)


DOCUTILS_PROBLEM = re.compile(r"\((?:INFO|WARNING|ERROR|SEVERE)/\d\)")
"""How docutils reports a caption it could not render (e.g. |y| read as a substitution)."""


@pytest.fixture(scope="module")
def readme_venv(tmp_path_factory) -> Path:
    """A virtual environment made as the README's first command makes it (`pip install -e .`,
    no dev extras): what a user has when they build the report."""
    venv = tmp_path_factory.mktemp("readme-venv") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin/pip"), "install", "-q", "-e", str(REPO)],
                             capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


@pytest.mark.slow
def test_report_builds_without_a_docutils_problem_in_the_readme_venv(finished_run, readme_venv):
    """`snakemake --report report.html` (a README command) in the README's venv: it needs
    pygments (a dependency because of it), and every figure caption renders as RST without a
    docutils error or warning."""
    env = {**ENV, "PATH": f"{readme_venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(readme_venv / "bin/python"), "-m", "snakemake", "-s", str(REPO / "Snakefile"),
           "--directory", str(finished_run), "--configfile", "tiny.yaml", "--report",
           "report.html"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=finished_run, env=env,
                         timeout=900)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert not DOCUTILS_PROBLEM.search(run.stdout + run.stderr), run.stderr[-3000:]
    html = (finished_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "system-message" not in html
    check = subprocess.run([str(readme_venv / "bin/nnfield"), "check-config",
                            str(REPO / "config/config.yaml")], capture_output=True, text=True,
                           env=env, timeout=300)  # fmt: skip
    assert check.returncode == 0 and "npoint: 24 points" in check.stdout, check.stderr


def nnfield_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfield", *args], capture_output=True,
                          text=True, timeout=600, cwd=workdir, env=ENV)  # fmt: skip


@pytest.mark.slow
def test_verify_finds_every_study_consistent(finished_run):
    run = nnfield_cli(finished_run, "verify", "results")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and all(line.endswith(": consistent") for line in lines), lines
    npoint = next(line for line in lines if line.startswith("npoint:"))
    assert npoint.startswith("npoint: 4 points, 12 data files")  # 4 merged + 8 shards


@pytest.mark.slow
def test_verify_names_damaged_and_foreign_files(finished_run, tmp_path):
    shutil.copytree(finished_run / "results", tmp_path / "results")
    results = tmp_path / "results"
    point = next((results / "depth/shards").glob("**/shard-0.nc"))
    point.write_bytes(point.read_bytes()[:5000])
    study = results / "hidden/hidden.nc"
    ds = xr.load_dataset(study)
    ds.attrs["schema_version"] = np.int32(1)
    ds.to_netcdf(study)
    (results / "figures/learning_thermo.png").write_bytes(b"not a picture")
    other = yaml.safe_load(TINY)
    other["studies"]["npoint"]["seed"] = 11
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    run = nnfield_cli(tmp_path, "verify", "results")
    assert run.returncode == 1
    verdicts = {line.split(":")[0]: line for line in run.stdout.splitlines() if ":" in line[:9]}
    assert verdicts["npoint"].endswith(": consistent")
    for study in ("depth", "learning", "hidden"):
        assert "INCONSISTENT (1 problem(s))" in verdicts[study], run.stdout
    assert f"{point.relative_to(tmp_path)}: not a readable NetCDF file" in run.stdout
    assert "results/hidden/hidden.nc: schema_version 1, expected 2" in run.stdout
    assert "results/figures/learning_thermo.png: not a PNG file" in run.stdout
    run = nnfield_cli(tmp_path, "verify", "results", "--config", "other.yaml")
    assert run.returncode == 1
    assert run.stdout.count("made with another configuration of point family~") == 12
    assert "results/npoint/npoint.nc: made from other points" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["figure", "analyze"])
def test_outputs_regenerate_byte_identical(finished_run, rule):
    """`--forcerun figure` redraws every figure, `--forcerun analyze` remakes every study
    dataset and figure, byte for byte (in processes with another string-hash seed)."""
    outputs = sorted((finished_run / "results/figures").glob("*.p[dn][fg]"))
    assert len(outputs) == 16  # 8 figures, pdf and png
    if rule == "analyze":
        outputs += sorted((finished_run / "results").glob("*/*.nc"))
        assert len(outputs) == 20
    before = {path: path.read_bytes() for path in outputs}
    stamps = {path: path.stat().st_mtime_ns for path in outputs}
    run = snakemake(finished_run, "--cores", "2", "--forcerun", rule,
                    env={"PYTHONHASHSEED": "4321"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    for path in outputs:
        assert path.stat().st_mtime_ns != stamps[path], f"{path.name} was not remade"
        assert path.read_bytes() == before[path], f"{path.name} differs when remade"


@pytest.mark.slow
def test_interrupted_output_is_regenerated(finished_run, tmp_path):
    work = tmp_path / "copy"  # a copy: other test files read the shared run meanwhile
    shutil.copytree(finished_run, work, symlinks=True)
    point = work / "results/npoint/points/family~erf/width~30.nc"
    point.unlink()
    run = snakemake(work, "--cores", "2", "results/npoint/points/family~erf/width~30.nc")
    assert run.returncode == 0, run.stderr[-2000:]
    assert point.exists()


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("arch: relu", "arch: tanh"), "families[0].arch"),
        (("widths: [3, 30]", "widths: [3, -30]"), "widths[1]"),
        (("    seed: 1\n", ""), "npoint.seed"),
        (("    seed: 1\n", "    seed: 1\n    seed: 7\n"), "duplicate key 'seed'"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, edit, key):
    (tmp_path / "tiny.yaml").write_text(TINY.replace(*edit))
    run = snakemake(tmp_path, "-n")
    assert run.returncode != 0
    assert key in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()


def _slurm_cluster() -> dict | None:
    """Facts about a reachable SLURM cluster (default partition, CPUs of a node, whether sacct
    works), or None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return None
    info = subprocess.run(["sinfo", "-h", "-o", "%P %c"], capture_output=True, text=True)
    if info.returncode != 0 or not info.stdout.strip():
        return None
    rows = [line.split() for line in info.stdout.splitlines()]
    partition, cpus = next(((p, c) for p, c in rows if p.endswith("*")), rows[0])
    sacct = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True)
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return {
        "partition": partition.rstrip("*"),
        "cpus": int(cpus.rstrip("+")),
        "sacct": sacct.returncode == 0 and "disabled" not in sacct.stdout + sacct.stderr,
        "gpus": "gpu" in gres,
    }


SLURM = _slurm_cluster()
REQUIRE_SLURM = os.environ.get("NNFIELD_REQUIRE_SLURM") == "1"
"""Set by .ci/run after starting its cluster: then a missing cluster fails instead of skipping."""


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    """The tiny workflow through `--profile profiles/slurm` on the cluster .ci/run starts (or
    any reachable one); options a test cluster needs are given on the command line."""
    work = tmp_path_factory.mktemp("slurm")
    (work / "tiny.yaml").write_text(TINY)
    run = snakemake(work, *slurm_options())
    assert run.returncode == 0, run.stderr[-4000:]
    return work, run.stdout + run.stderr


def slurm_options(*more: str) -> list[str]:
    """`--profile profiles/slurm` with the options a test cluster needs, and --verbose (the
    plugin then logs every sbatch call it makes)."""
    options = ["--profile", str(REPO / "profiles/slurm"), "--verbose",
               "--slurm-init-seconds-before-status-checks", "5", "--jobs", "4",
               "--cores", str(min(4, SLURM["cpus"])), *more, "--default-resources",
               f"slurm_partition={SLURM['partition']}", "mem_mb=1000", "runtime=30",
               "cpus_per_task=1"]  # fmt: skip
    if not SLURM["sacct"]:
        options += ["--slurm-status-command", "squeue"]  # no accounting database
    return options


def sbatch_calls(output: str) -> list[tuple[str, str]]:
    """(the rule or group named in --comment, the sbatch command line) of every submission of a
    verbose run."""
    calls = re.findall(r"sbatch call: (sbatch .*?) --wrap=", output)
    return [(re.search(r"--comment (\S+)", call).group(1), call) for call in calls]


GROUPED_SIMULATE = "rule_simulate_simulate_"
"""How the plugin's --comment of a group job of simulate batches starts (rule_GROUP_RULES...)."""
PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
BATCHES_PER_SUBMISSION = PROFILE["group-components"]["simulate"]
"""Short CPU simulate batches per SLURM submission (the profile's group-components)."""


def simulate_submissions(batches) -> tuple[list[int], list]:
    """(sizes of the submissions of short batches, the batches submitted alone) that the
    profile's grouping makes of ``batches`` (CPU)."""
    short = sum(b.short for b in batches)
    n = BATCHES_PER_SUBMISSION
    sizes = [n] * (short // n) + ([short % n] if short % n else [])
    return sizes, [b for b in batches if not b.short]


def _tiny_batches(text: str = TINY):
    from nnfield import batching
    from nnfield import config as nnconfig

    cfg = nnconfig.validate(yaml.safe_load(text))
    return cfg, nnconfig.expand(cfg), batching.plan(nnconfig.expand(cfg), cfg["batching"])


def _dry_run_submissions(output: str) -> tuple[list[int], list[str]]:
    """(jobs in each simulate group job, rules of the simulate jobs outside groups) of a dry
    run's job listing."""
    groups, alone, current = [], [], None
    for line in output.splitlines():
        if re.search(r"\] Group job \S+ ", line):
            current = re.search(r"Group job (\S+) ", line).group(1)
            if current == "simulate":
                groups.append(0)
        elif match := re.match(r"^rule (simulate_\S+):$", line):
            alone.append(match.group(1))
            current = None
        elif re.match(r"^\s+rule simulate_\S+:$", line):
            assert current == "simulate", line
            groups[-1] += 1
    return groups, alone


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_the_slurm_profile_groups_short_cpu_batches(tmp_path, device):
    """A dry run through the SLURM profile (no cluster needed): on CPU the short batches go
    `group-components` to a group job, one submission each; on GPU every batch stands alone."""
    (tmp_path / "tiny.yaml").write_text(TINY.replace("batching:", f"device: {device}\nbatching:"))
    run = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles/slurm"))
    assert run.returncode == 0, run.stderr[-3000:]
    groups, alone = _dry_run_submissions(run.stdout + run.stderr)
    _, _, batches = _tiny_batches()
    if device == "cpu":
        sizes, long = simulate_submissions(batches)
        assert sorted(groups) == sorted(sizes) and len(sizes) > 1, (groups, sizes)
        assert sorted(alone) == sorted(b.rule for b in long)
    else:
        assert groups == [] and sorted(alone) == sorted(b.rule for b in batches)


@pytest.mark.slow
@pytest.mark.skipif(SLURM is None and not REQUIRE_SLURM,
                    reason="no SLURM cluster reachable (.ci/run starts one)")  # fmt: skip
def test_slurm_run_is_grouped_and_equals_the_local_run(finished_run, request):
    """Jobs really ran under sbatch: one submission per 10 short simulate batches (the
    profile's group-components), one per 50 merges and one per study; every point file and
    study dataset equals the local run's."""
    if SLURM is None:
        pytest.fail("NNFIELD_REQUIRE_SLURM=1 but no SLURM cluster is reachable (sinfo failed)")
    work, output = request.getfixturevalue("slurm_run")
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    cfg, points, batches = _tiny_batches()
    merges = sum(spec.params["shards"] > 1 for specs in points.values() for spec in specs.values())
    sizes, alone = simulate_submissions(batches)
    expected = len(sizes) + len(alone) + -(-merges // 50) + len(cfg["studies"])
    assert len(sizes) > 1 and merges > 1  # grouped: more than one submission of batches
    assert len(submitted) == expected, (len(submitted), expected)
    grouped = [c for c, _ in sbatch_calls(output) if c.startswith(GROUPED_SIMULATE)]
    assert len(grouped) == len(sizes), grouped
    logs = sorted((work / "results").glob("*/logs/simulate/batch-*.log"))
    assert len(logs) == len(batches)
    assert all("running in SLURM job" in log.read_text() for log in logs)
    results = finished_run / "results"
    files = [*results.glob("*/*.nc"), *results.glob("*/points/**/*.nc"),
             *results.glob("*/shards/**/*.nc")]  # fmt: skip
    assert len(files) > 20
    for path in sorted(files):
        other = work / path.relative_to(finished_run)
        with xr.open_dataset(path) as local, xr.open_dataset(other) as remote:
            xr.testing.assert_equal(local, remote)
        assert path.read_bytes() == other.read_bytes(), path  # and byte for byte


@pytest.mark.slow
@pytest.mark.skipif(SLURM is None and not REQUIRE_SLURM,
                    reason="no SLURM cluster reachable (.ci/run starts one)")  # fmt: skip
def test_slurm_submissions_ask_for_the_batch_walltime_and_no_account(request):
    """The sbatch line of every submission of short simulate batches asks for the walltime of
    its series layers (10 minutes, the batches' floor, per layer of at most `--cores` batches;
    nnfield.batching.Batch.runtime_minutes), their memory and no GPU; a batch submitted alone
    asks for its own walltime; and, with no slurm_account set, no submission names an account
    (the plugin's fallback when it cannot guess one: the profile sets nothing the plugin does
    not read)."""
    if SLURM is None:
        pytest.fail("NNFIELD_REQUIRE_SLURM=1 but no SLURM cluster is reachable (sinfo failed)")
    _, output = request.getfixturevalue("slurm_run")
    calls = sbatch_calls(output)
    _, _, batches = _tiny_batches()
    sizes, alone = simulate_submissions(batches)
    per_layer = min(4, SLURM["cpus"])  # slurm_options: --cores; profile: mem_mb 8000 / 2000
    grouped = [call for comment, call in calls if comment.startswith(GROUPED_SIMULATE)]
    walltimes = sorted(int(re.search(r" -t (\d+) ", call).group(1)) for call in grouped)
    assert walltimes == sorted(batching.WALLTIME_FLOOR * -(-k // per_layer) for k in sizes)
    memory = {f" --mem {2000 * min(k, per_layer)} " for k in sizes}
    for call in grouped:
        assert any(m in call for m in memory), (call, memory)
    by_comment = dict(calls)
    for batch in alone:
        call = by_comment[f"rule_{batch.rule}"]
        assert f" -t {batch.runtime_minutes(1)} " in call, call
        assert " --mem 2000 " in call and "--cpus-per-task=1" in call, call
    assert all("--gpus" not in c and " -A " not in c for _, c in calls), calls


def tiny_hidden(contractions=(0.5,), **top) -> str:
    """TINY's hidden study alone with its mixture ensemble only, at ``contractions``, as YAML;
    ``top`` adds top-level keys (device, batching)."""
    hidden = yaml.safe_load(TINY)["studies"]["hidden"]
    mix = next(e for e in hidden["ensembles"] if e["name"] == "mix")
    hidden["ensembles"] = [{**mix, "contractions": list(contractions)}]
    return yaml.safe_dump({**top, "studies": {"hidden": hidden}})


GPU_TINY = tiny_hidden((0.5, 0.6), device="gpu", batching={"max_points": 1})


@pytest.mark.slow
@pytest.mark.skipif(SLURM is None or not SLURM["gpus"],
                    reason="no SLURM cluster with GPUs (.ci/run fakes two)")  # fmt: skip
def test_slurm_gpu_submissions_give_each_simulate_job_one_gpu(tmp_path):
    """`device: gpu` through the SLURM profile on a cluster with (fake) GPUs: every simulate
    batch is its own submission asking for `--gpus=1` and its walltime, SLURM hands each job one
    GPU (CUDA_VISIBLE_DEVICES holds one id), JAX preallocation is off, and the job then fails, as
    it must, because JAX finds no real GPU behind the fake one."""
    (tmp_path / "tiny.yaml").write_text(GPU_TINY)
    run = snakemake(tmp_path, *slurm_options("--retries", "0"))
    assert run.returncode != 0  # no JAX GPU behind a fake device
    calls = dict(sbatch_calls(run.stdout + run.stderr))
    _, _, batches = _tiny_batches(GPU_TINY)
    assert all(b.short for b in batches)  # short, yet never grouped on GPU
    assert len(batches) == 2 and set(calls) == {f"rule_{b.rule}" for b in batches}, calls
    for batch in batches:
        call = calls[f"rule_{batch.rule}"]
        assert re.search(r" --gpus=1( |$)", call), call
        assert f" -t {batch.runtime_minutes(1)} " in call, call
        log = (tmp_path / batch.log).read_text()
        assert "running in SLURM job" in log, log
        assert re.search(r"CUDA_VISIBLE_DEVICES=\d+(\s|$)", log), log  # one GPU, its own
        assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in log, log
        assert "config key 'device' is gpu, but JAX sees only cpu devices" in log, log


# The one lint nnfield declines: rules have no conda env or container, because the workflow
# runs in the venv that installed nnfield (the Snakefile imports it), not in per-rule envs.
ACCEPTED_LINTS = {"Specify a conda environment or container for each rule."}


def test_lint_is_clean(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not available")
    # in a scratch directory: evaluating the workflow writes its run record and plans there
    cmd = [*SNAKEMAKE, "--lint", "--directory", str(tmp_path), "--configfile",
           str(REPO / "config/config.yaml")]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    output = run.stdout + run.stderr
    lints = set(re.findall(r"^ +\* (.+?):$", output, re.M))
    assert "Lints for" in output or run.returncode == 0, output[-3000:]
    assert lints <= ACCEPTED_LINTS, (sorted(lints - ACCEPTED_LINTS), output[-3000:])
    assert not re.search(r"Error|Exception|Traceback", output), output[-3000:]


@pytest.mark.slow
def test_config_drift_without_metadata_and_orphaned_writers_are_caught(finished_run, tmp_path):
    """Results restored without `.snakemake`, run under `--rerun-triggers mtime`: a changed
    seed or analysis option reruns exactly what it should, a dry run changes nothing a later
    check reads, an orphaned simulate job of the old config refuses to write once a run of the
    new one has started, an old-config file that got in anyway is refused by the analysis and
    fixed by the command its message gives, and a figure older than its dataset is named."""
    work = tmp_path / "copy"
    shutil.copytree(finished_run, work, symlinks=True)
    shutil.rmtree(work / ".snakemake")
    # whatever earlier tests left to do under mtime alone (a point they regenerated byte for
    # byte is newer than its analysis: Snakemake's metadata knows it is unchanged)
    up_to_date = snakemake(work, "--cores", "2", "--rerun-triggers", "mtime")
    assert up_to_date.returncode == 0, up_to_date.stderr[-2000:]
    shutil.rmtree(work / ".snakemake")
    results = work / "results"
    shard = next((results / "hidden/shards").glob("ensemble~mix/**/shard-0.nc"))
    old_bytes = shard.read_bytes()
    old_tasks = {p.name: p.read_text() for p in (results / "hidden/batches").glob("*.json")}
    edited = TINY.replace("    seed: 4\n", "    seed: 5\n").replace(
        "    burn_in: 50\n", "    burn_in: 50\n    analysis: {max_block_correlation: 0.2}\n"
    )
    (work / "tiny.yaml").write_text(edited)
    mtime = ["--rerun-triggers", "mtime"]
    dry = snakemake(work, "-n", *mtime)
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout[dry.stdout.index("Job stats") :],
                           flags=re.M))  # fmt: skip
    assert {r for r in jobs if r.startswith("simulate_")} == {
        f"simulate_hidden_{name.split('-')[0]}" for name in old_tasks
    }
    lines = dry.stdout.splitlines()
    analyses = [lines[i : i + 8] for i, line in enumerate(lines) if "rule analyze" in line]
    assert jobs["analyze"] == "1", [line for a in analyses for line in a if "reason" in line]
    assert "seed: 4" in (results / "config.yaml").read_text()  # a dry run records nothing
    assert nnfield_cli(work, "verify", "results").returncode == 0

    run = snakemake(work, "--cores", "2", *mtime)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "seed: 5" in (results / "config.yaml").read_text()
    new_bytes = shard.read_bytes()
    assert new_bytes != old_bytes
    assert nnfield_cli(work, "verify", "results").returncode == 0

    from nnfield.batching import read_task_file

    orphan_tasks = tmp_path / "orphan.json"  # an orphaned job of the old config
    orphan_tasks.write_text(next(iter(old_tasks.values())))
    outs = [work / out for _, _, out in read_task_file(orphan_tasks)]
    stamps = [out.stat().st_mtime_ns for out in outs]
    orphan = nnfield_cli(work, "simulate", "--tasks", str(orphan_tasks))
    assert orphan.returncode == 2, orphan.stderr[-2000:]
    assert "not writing results/hidden/shards/" in orphan.stderr
    assert [out.stat().st_mtime_ns for out in outs] == stamps

    shard.write_bytes(old_bytes)  # an old-config file got in after all
    run = snakemake(work, "--cores", "2", *mtime)
    assert run.returncode != 0
    log = (results / "hidden/logs/analyze.log").read_text()
    assert f"{shard.relative_to(work)}: made with another spec of point" in log
    assert "run `nnfield verify results --remove-bad`, then snakemake again" in log
    fix = nnfield_cli(work, "verify", "results", "--remove-bad")
    assert fix.returncode == 1 and "removed 5 result file(s)" in fix.stdout, (
        fix.stdout  # the point and the hidden study's four figure files (no dataset was left)
    )
    assert not shard.exists() and not (results / "hidden/hidden.nc").exists()
    run = snakemake(work, "--cores", "2", *mtime)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shard.read_bytes() == new_bytes
    assert nnfield_cli(work, "verify", "results").returncode == 0

    other = edited.replace("    seed: 5\n", "    seed: 6\n")  # a dry run of another config
    (work / "other.yaml").write_text(other)
    dry = subprocess.run([*SNAKEMAKE, "--directory", str(work), "--configfile", "other.yaml",
                          "-n"], capture_output=True, text=True, cwd=work, env=ENV)  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-2000:]
    fix = nnfield_cli(work, "verify", "results", "--remove-bad")
    assert fix.returncode == 0 and "removed 0 result file(s)" in fix.stdout, fix.stdout

    (work / "tiny.yaml").write_text(edited.replace("max_block_correlation: 0.2", "max_block_"
                                                   "correlation: 0.3"))  # fmt: skip
    run = snakemake(work, "--cores", "2", "results/hidden/hidden.nc", *mtime)
    assert run.returncode == 0, run.stderr[-2000:]
    check = nnfield_cli(work, "verify", "results")
    assert check.returncode == 1
    assert "results/figures/hidden_entropy.png: drawn from another study dataset" in check.stdout


@pytest.mark.slow
def test_fault_injection_harness_finds_nothing_silent(finished_run, tmp_path):
    """scripts/fault_injection.py (bit flips and a full disk on all four studies; its kill
    checks are tests/test_workflow_kill.py's and take minutes) on a copy of the finished run."""
    work = tmp_path / "copy"
    shutil.copytree(finished_run, work, symlinks=True)
    cmd = [sys.executable, str(REPO / "scripts/fault_injection.py"), "--workdir", str(work),
           "--flips", "20", "--skip-kill"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for study in ("npoint", "depth", "learning", "hidden"):
        assert f"ok   bit flips, {study}: 20 flips" in run.stdout, run.stdout
        assert f"), {study}: cannot write" in run.stdout, run.stdout
    assert "0 SILENT" in run.stdout and "0 check(s) failed" in run.stdout


PARTIAL = [
    "studies:\n  depth: {seed: 3}\n",
    "batching: {max_points: 5}\n",
    "studies:\n  depth: {seed: -1}\n",
    "studies:\n  npoint: {widths: [4, 8]}\n",
    "studies:\n  depth: {seed: 3, networks: 2000, block_size: 200, families: [{name: r, "
    "activation: relu, inputs: [1.0], widths: [4], depths: [2]}]}\n",
]


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("text", PARTIAL)
def test_check_config_agrees_with_snakemake_on_partial_files(tmp_path, text, replace):
    """`nnfield check-config FILE [--replace-workflow-config]` accepts exactly what
    `snakemake --configfile FILE [--replace-workflow-config]` accepts in the same directory:
    FILE merged into its config/config.yaml as Snakemake merges it, or alone."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config/config.yaml", tmp_path / "config/config.yaml")
    (tmp_path / "partial.yaml").write_text(text)
    flag = ["--replace-workflow-config"] if replace else []
    check = nnfield_cli(tmp_path, "check-config", "partial.yaml", *flag)
    dry = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--configfile",
                          "partial.yaml", *flag, "-n"], capture_output=True, text=True,
                         cwd=tmp_path, env=ENV, timeout=300)  # fmt: skip
    assert check.returncode in (0, 2), check.stderr[-2000:]
    assert (check.returncode == 0) == (dry.returncode == 0), (check.stderr, dry.stderr[-2000:])
    if check.returncode:
        key = check.stderr.split("config key '")[1].split("'")[0]
        assert key in dry.stdout + dry.stderr


def test_workflow_files_are_snakefmt_clean():
    """The Snakefile and workflow/rules/*.smk as snakefmt writes them (line length 100, from
    pyproject.toml; snakefmt is a dev extra)."""
    cmd = [str(Path(sys.executable).parent / "snakefmt"), "--check", "Snakefile", "workflow/rules"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
