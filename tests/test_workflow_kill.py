"""End to end: SIGKILL of a running simulate job (its own file, so that a parallel run does not
queue it behind the main workflow tests in tests/test_workflow.py)."""

from __future__ import annotations

import signal
import subprocess
import time

import psutil
import pytest
import yaml
from test_workflow import ENV, SNAKEMAKE, snakemake

from nnfield import batching
from nnfield import config as nnconfig

SLOW = """
studies:
  depth:
    seed: 9
    networks: 20000
    block_size: 1000
    families:
      - {name: slow, activation: tanh, inputs: [1.0, 0.5], widths: [4, 64], depths: [24]}
"""
FAST_SHARD = "results/depth/shards/family~slow/width~4/depth~24/shard-0.nc"
SLOW_SHARD = "results/depth/shards/family~slow/width~64/depth~24/shard-0.nc"


def _simulate_process(root: psutil.Process) -> psutil.Process | None:
    """The `nnfield simulate` process among the descendants of a Snakemake process."""
    for proc in root.children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if "simulate" in cmd and any(part.endswith("nnfield") for part in cmd[:2]):
            return proc
    return None


@pytest.mark.slow
def test_killed_simulate_job_leaves_nothing_trusted_and_rerun_is_identical(tmp_path):
    """SIGKILL a simulate job (one batch of two points) after its first point's file is
    written: no output of the batch (nor anything a rerun trusts) is left, and the rerun writes
    files byte-identical to an uninterrupted run's."""
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for work in (clean, killed):
        work.mkdir()
        (work / "tiny.yaml").write_text(SLOW)
    run = snakemake(clean, "--cores", "1", SLOW_SHARD)
    assert run.returncode == 0, run.stderr[-2000:]
    cmd = [*SNAKEMAKE, "--directory", str(killed), "--configfile", "tiny.yaml", "--cores", "1",
           SLOW_SHARD]  # fmt: skip
    cfg = nnconfig.validate(yaml.safe_load(SLOW))
    (batch,) = batching.plan(nnconfig.expand(cfg), cfg["batching"])  # both points, one job
    log = killed / batch.log
    with subprocess.Popen(cmd, cwd=killed, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as main:  # fmt: skip
        job = None
        for _ in range(600):  # until the job has started computing (JAX is up)
            job = job or _simulate_process(psutil.Process(main.pid))
            if job and log.exists() and "simulate [2/2]" in log.read_text():
                break
            time.sleep(0.1)
        assert job is not None and job.is_running(), "the simulate job never started"
        time.sleep(1.0)
        text = log.read_text()
        assert f"wrote {FAST_SHARD}" in text, text
        assert job.is_running() and f"wrote {SLOW_SHARD}" not in text, "job finished too early"
        job.send_signal(signal.SIGKILL)
        output, _ = main.communicate(timeout=300)
    assert not job.is_running()
    assert main.returncode != 0 and f"Error in rule {batch.rule}" in output, output[-2000:]
    for shard in (FAST_SHARD, SLOW_SHARD):  # the finished point goes with its failed batch
        shard_dir = (killed / shard).parent
        assert not (killed / shard).exists(), shard
        assert not shard_dir.exists() or list(shard_dir.iterdir()) == []
    run = snakemake(killed, "--cores", "1", SLOW_SHARD)
    assert run.returncode == 0, run.stderr[-2000:]
    for shard in (FAST_SHARD, SLOW_SHARD):
        assert (killed / shard).read_bytes() == (clean / shard).read_bytes(), shard
