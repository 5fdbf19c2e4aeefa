"""Fault injection on all four studies: killed jobs, a killed controller, a full disk, bit flips.

    python scripts/fault_injection.py [--workdir DIR] [--flips N] [--seed S] [--skip-kill]

Runs a small sweep of every study (``CONFIG`` below) in DIR (default: a new temporary directory;
an existing DIR with a consistent run is reused as the reference), then:

kill       SIGKILL one running simulate job of each study, and once the Snakemake controller
           itself (its jobs run on as orphans), rerun, and require ``nnfield verify`` to pass and
           every point and study file to be byte-identical to the reference run;
disk full  simulate one point of each study onto a 200 kB tmpfs (root), or under a 64 kB file
           size limit (otherwise): one error line, exit 2, and no file left;
bit flips  flip one random bit of a random point file, N times per study, and classify each:
           detected (the reader refuses the file, naming it), crashed (the HDF5 library kills
           the reading process: the job fails, without a clear message), hung (no answer
           within HANG_SECONDS: the job would hang until its walltime), harmless (every value,
           coordinate and global attribute reads back unchanged), metadata (only a variable's
           descriptive text changed) or SILENT (a value changed and nothing noticed: a
           failure).

Prints one line per check and exits 1 if any check fails.  Needs only the installed package
(``pip install -e .``; psutil comes with Snakemake).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

CONFIG = """
batching: {max_points: 2}
studies:
  npoint:
    seed: 1
    networks: 40000
    block_size: 1000
    shards: 2
    widths: [3, 30]
    families:
      - {name: relu, arch: relu, sigma_b0: 0.0, sigma_b1: 0.0, inputs: [0.5, 1.0]}
  depth:
    seed: 2
    networks: 4000
    block_size: 200
    families:
      - {name: tanh, activation: tanh, inputs: [1.0, 0.5], widths: [4, 32], depths: [16]}
  learning:
    seed: 3
    networks: 2000
    block_size: 200
    problems:
      - {name: q, hessian_eigenvalues: [1.0, 0.5], learning_rates: [0.1, 0.2],
         temperatures: [0.5], initial: [narrow], steps: 400}
  hidden:
    seed: 4
    networks: 400
    block_size: 40
    steps: 2000
    burn_in: 50
    ensembles:
      - {name: mix, weights: mixture, neurons: 8, contractions: [0.5, 0.7]}
"""
STUDIES = ("npoint", "depth", "learning", "hidden")  # the studies of CONFIG
HANG_SECONDS = 30
"""A reader that takes longer than this on one flipped file is reported as hung."""


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "--directory", str(work), "--configfile", "sweep.yaml", "--cores", "2",
           *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=ENV, timeout=1800)


def nnfield(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfield", *args], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=600, **kw)  # fmt: skip


def result_files(work: Path) -> dict[str, bytes]:
    """Every point, shard and study file of a run, by path relative to ``work``."""
    files = sorted((work / "results").glob("*/**/*.nc"))
    return {str(p.relative_to(work)): p.read_bytes() for p in files}


def reference_run(work: Path) -> dict[str, bytes]:
    if (work / "results").exists() and nnfield("verify", "results", cwd=work).returncode == 0:
        return result_files(work)
    (work / "sweep.yaml").write_text(CONFIG)
    run = snakemake(work)
    if run.returncode != 0:
        sys.exit(f"the reference run failed:\n{run.stderr[-3000:]}")
    return result_files(work)


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, ok: bool, text: str) -> None:
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {text}", flush=True)


def _processes(root_pid: int, study: str | None):
    """`nnfield simulate` processes below ``root_pid`` (of ``study``'s batches, if given)."""
    import psutil

    found = []
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "nnfield simulate" in cmd and (study is None or f"results/{study}/batches" in cmd):
            found.append(proc)
    return found


def kill_and_rerun(work: Path, reference: dict[str, bytes], victim: str, report: Report) -> None:
    """Start a clean run, SIGKILL a simulate job of ``victim`` (a study) or, for ``victim`` =
    'controller', Snakemake itself once a job runs; rerun; compare with the reference."""
    import psutil

    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    cmd = [*SNAKEMAKE, "--directory", str(work), "--configfile", "sweep.yaml", "--cores", "2"]
    killed = None
    with subprocess.Popen(cmd, cwd=work, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as main:  # fmt: skip
        study = None if victim == "controller" else victim
        deadline = time.time() + 600
        while time.time() < deadline and main.poll() is None:
            jobs = _processes(main.pid, study)
            if jobs:
                time.sleep(random.uniform(0.5, 2.0))  # somewhere inside the job
                target = psutil.Process(main.pid) if victim == "controller" else jobs[0]
                target.send_signal(signal.SIGKILL)
                killed = target
                break
            time.sleep(0.05)
        main.wait(timeout=600)
    if killed is None:
        report.line(False, f"kill {victim}: no simulate job seen running")
        return
    if victim == "controller":  # its jobs run on as orphans: let them end, lift its lock
        _wait_for_orphans(work)
        snakemake(work, "--unlock")
    run = snakemake(work, "--rerun-incomplete")
    verify = nnfield("verify", "results", cwd=work)
    again = result_files(work)
    same = again.keys() == reference.keys() and all(again[k] == reference[k] for k in again)
    report.line(run.returncode == 0 and verify.returncode == 0 and same,
                f"kill {victim}: rerun {'ok' if run.returncode == 0 else 'FAILED'}, verify "
                f"{'consistent' if verify.returncode == 0 else 'INCONSISTENT'}, "
                f"{'byte-identical' if same else 'files DIFFER'} to the reference")  # fmt: skip


def _wait_for_orphans(work: Path) -> None:
    """Wait until no `nnfield simulate` process runs in ``work``."""
    import psutil

    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "nnfield simulate" in cmdline and proc.info["cwd"] == str(work):
            try:
                proc.wait(timeout=600)
            except psutil.Error:
                pass


def _small_disk(base: Path) -> Path | None:
    mount = base / "small-disk"
    mount.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return None
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    return mount if made.returncode == 0 else None


def _cap_file_size() -> None:  # in the child: writes past 64 kB fail with EFBIG, no signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))


def disk_full(work: Path, report: Report) -> None:
    from nnfield import config

    cfg = config.validate(config.read_yaml(work / "sweep.yaml"))
    points = config.expand(cfg)
    mount = _small_disk(work)
    where = mount if mount is not None else work / "capped"
    where.mkdir(exist_ok=True)
    filler = where / "filler"
    if mount is not None:  # all but 4 kB taken: no point file fits
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        os.truncate(filler, max(0, filler.stat().st_size - 4096))
    try:
        for study in STUDIES:
            spec = list(points[study].values())[-1]
            out = where / f"{study}.nc"
            run = nnfield("simulate", "--spec", spec.to_json(), "--out", str(out),
                          preexec_fn=None if mount is not None else _cap_file_size)  # fmt: skip
            errors = [line for line in run.stderr.splitlines() if " ERROR " in line]
            expected = "no space left" if mount is not None else "file size limit"
            ok = (run.returncode == 2 and len(errors) == 1 and expected in errors[0]
                  and "Traceback" not in run.stderr
                  and not [p for p in where.iterdir() if p != filler])  # fmt: skip
            what = "200 kB tmpfs" if mount is not None else "64 kB file size limit"
            said = errors[0].split(" ERROR ")[-1] if errors else run.stderr[-300:]
            report.line(ok, f"disk full ({what}), {study}: {said}")
    finally:
        if mount is not None:
            subprocess.run(["umount", str(mount)], check=False)


def _content(path: Path, study: str) -> tuple[dict, dict, dict]:
    """(values, global attributes, variable attributes) of a file, read as the workflow reads
    it (raises DataFileError when the reader refuses it)."""
    import netCDF4

    from nnfield.engine.store import read_raw
    from nnfield.studies import load

    raw = read_raw(path, study=study, required=load(study).raw_variables())
    with netCDF4.Dataset(path) as nc:
        var_attrs = {n: {a: str(v.getncattr(a)) for a in v.ncattrs()} for n, v in
                     nc.variables.items()}  # fmt: skip
    return raw.variables, {k: str(v) for k, v in raw.attrs.items()}, var_attrs


def _equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fc":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _classify(study: str, original: Path, flipped: Path) -> str:
    """detected, harmless, metadata or SILENT for one flipped copy of ``original``."""
    from nnfield.engine.store import DataFileError

    values, attrs, var_attrs = _content(original, study)
    try:
        got = _content(flipped, study)
    except DataFileError:
        return "detected"
    if _equal(got[0], values) and got[1] == attrs:
        return "metadata" if got[2] != var_attrs else "harmless"
    return "SILENT"


def _classifier() -> None:
    """Child mode (--classify): read 'study original flipped' lines, answer one category each.
    A damaged file can crash the HDF5 library itself, so the parent restarts a dead child."""
    for line in sys.stdin:
        study, original, flipped = line.split()
        print(_classify(study, Path(original), Path(flipped)), flush=True)


def bit_flips(work: Path, flips: int, seed: int, report: Report) -> None:
    rng = random.Random(seed)
    child = None
    for study in STUDIES:
        files = [p for p in sorted((work / "results" / study).glob("**/*.nc"))
                 if p.name != f"{study}.nc"]  # fmt: skip
        counts = {"detected": 0, "crashed": 0, "hung": 0, "harmless": 0, "metadata": 0,
                  "SILENT": 0}  # fmt: skip
        silent, hung = [], []
        for i in range(flips):
            path = rng.choice(files)
            data = bytearray(path.read_bytes())
            bit = rng.randrange(8 * len(data))
            data[bit // 8] ^= 1 << (bit % 8)
            flipped = work / f"flipped-{i}.nc"
            flipped.write_bytes(bytes(data))
            if child is None or child.poll() is not None:
                child = subprocess.Popen([sys.executable, __file__, "--classify"], env=ENV,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)  # fmt: skip
            child.stdin.write(f"{study} {path} {flipped}\n")
            child.stdin.flush()
            if select.select([child.stdout], [], [], HANG_SECONDS)[0]:
                answer = child.stdout.readline().strip() or "crashed"  # a dead reader
            else:  # the reader never returns: the job would hang (not silent, but reported)
                child.kill()
                child.wait()
                answer = "hung"
                hung.append(f"{path.relative_to(work)} bit {bit}")
            flipped.unlink()
            counts[answer] += 1
            if answer == "SILENT":
                silent.append(f"{path.relative_to(work)} bit {bit}")
        report.line(not silent, f"bit flips, {study}: {flips} flips in {len(files)} point "
                                f"files: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                    + (f" (silent: {'; '.join(silent[:3])})" if silent else "")
                    + (f" (hung: {'; '.join(hung[:3])})" if hung else ""))  # fmt: skip
    if child is not None:
        child.stdin.close()
        child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where to run (default: a new temp dir)")
    parser.add_argument("--flips", type=int, default=250, help="bit flips per study")
    parser.add_argument("--seed", type=int, default=0, help="seed of the flips and kill times")
    parser.add_argument("--skip-kill", action="store_true", help="no kill-and-rerun checks")
    parser.add_argument("--classify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.classify:
        _classifier()
        return 0
    random.seed(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nnfield-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "sweep.yaml").exists():
        (work / "sweep.yaml").write_text(CONFIG)
    print(f"fault injection in {work}", flush=True)
    reference = reference_run(work)
    report = Report()
    bit_flips(work, args.flips, args.seed, report)
    disk_full(work, report)
    if not args.skip_kill:
        for victim in (*STUDIES, "controller"):
            kill_and_rerun(work, reference, victim, report)
    print(f"{report.failed} check(s) failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
