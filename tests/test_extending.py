"""A new study is one folder plus one registration line (docs/extending.md).

The toy study in tests/data/toy_study (the output variance of linear random features against
its exact value) is copied into a copy of the package as nnfield/studies/toy, registered by one
added line in nnfield.studies.REGISTRY, and run end to end through the repository's Snakefile
beside a built-in study: config validation with its schema fragment (``nnfield check-config``
too), sweep, batched simulate jobs, merge, analyze, figure with its caption in the report, and
``nnfield verify``.  Nothing else in the package changes.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_workflow import ENV, REPO

TOY = REPO / "tests" / "data" / "toy_study"
REGISTRATION = '    "toy": "nnfield.studies.toy",\n'


def _package_with_toy(root: Path) -> Path:
    """A copy of the checkout's src/nnfield (and config/, where a source tree's package finds
    its base schema) with the toy study added as a folder and one registry line."""
    src = root / "src"
    shutil.copytree(REPO / "config", root / "config")
    shutil.copytree(REPO / "src" / "nnfield", src / "nnfield",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(TOY, src / "nnfield" / "studies" / "toy")
    registry = src / "nnfield" / "studies" / "__init__.py"
    before = registry.read_text()
    anchor = '    "hidden": "nnfield.studies.hidden",\n'
    assert anchor in before, "the registry's last entry moved: update this test"
    after = before.replace(anchor, anchor + REGISTRATION)
    registry.write_text(after)
    added = [line for line in difflib.ndiff(before.splitlines(True), after.splitlines(True))
             if line[0] in "+-"]  # fmt: skip
    assert added == ["+ " + REGISTRATION], added
    return src


def _run(work: Path, env: dict, module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in ``work`` (Snakemake gets the repository's Snakefile)."""
    extra = ["-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
             "toy.yaml"] if module == "snakemake" else []  # fmt: skip
    return subprocess.run([sys.executable, "-m", module, *extra, *args], capture_output=True,
                          text=True, timeout=900, cwd=work, env=env)  # fmt: skip


@pytest.mark.slow
def test_a_registered_toy_study_runs_end_to_end_through_snakemake(tmp_path):
    src = _package_with_toy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "toy.yaml").write_text(
        "studies:\n  toy: {scales: [0.5, 1.0, 3.0], shards: 2}\n"
        "  depth: {seed: 2, networks: 2000, block_size: 200, families: [{name: relu,"
        " activation: relu, inputs: [1.0], widths: [4], depths: [2]}]}\n"
    )
    env = {**ENV, "PYTHONPATH": str(src)}  # the copy comes before the installed package
    checked = _run(work, env, "nnfield", "check-config", "toy.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = work / "bad.yaml"
    bad.write_text("studies:\n  toy: {scales: [1.0], input: [0.0]}\n")
    refused = _run(work, env, "nnfield", "check-config", str(bad))
    assert refused.returncode != 0 and "config key 'studies.toy.input'" in refused.stderr
    run = _run(work, env, "snakemake", "--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    results = work / "results"
    assert sorted(p.name for p in (results / "toy" / "points").iterdir()) == [
        "scale~0.5.nc", "scale~1.nc", "scale~3.nc"]  # fmt: skip
    assert (results / "figures" / "toy_variance.png").stat().st_size > 0
    assert (results / "figures" / "toy_variance.pdf").stat().st_size > 0
    assert (results / "depth" / "depth.nc").exists()  # the built-in study beside it
    assert (results / "figures" / "depth_flow.png").exists()
    assert not (results / "npoint").exists()  # studies left out of the config do not run
    with xr.open_dataset(results / "toy" / "toy.nc") as ds:
        assert ds.attrs["study"] == "toy"
        np.testing.assert_allclose(ds["variance_exact"], ds["scale"] ** 2 * 5.25 / 3)
        # the toy's own exact-theory verdict (family-wise significance 1e-3)
        assert int(ds.attrs["variance_consistent"]) == 1, ds.attrs["variance_test"]
    with xr.open_dataset(results / "toy" / "shards" / "scale~1" / "shard-0.nc") as shard:
        assert shard["sum_f2"].attrs["long_name"] == "sum over networks of f(x)^2"
        assert shard.attrs["n_blocks"] == 20 and shard.sizes["block"] == 10  # engine's
        assert shard["nonfinite"].values.tolist() == [0] * 10  # stored by the engine
    check = _run(work, env, "nnfield", "verify", "results")
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith(": consistent") for line in lines), lines
    assert any(line.startswith("toy: 3 points") for line in lines), lines
    report = _run(work, env, "snakemake", "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert "jackknife estimate of the output variance of linear random features" in html
