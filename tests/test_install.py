"""A non-editable install (`pip install .`, as from a wheel): the package carries its schema and
default config, and `nnfield check-config` and the workflow run outside the checkout.

Slow: it builds a virtual environment with the package's dependencies (about a minute)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
from test_workflow import tiny_hidden

REPO = Path(__file__).resolve().parents[1]

SMALL = tiny_hidden()
"""One small hidden point: the whole workflow in one simulate job."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding nnfield installed from the checkout without -e (built as a wheel)."""
    venv = tmp_path_factory.mktemp("wheel-venv") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(REPO)],
                             capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def _run(venv: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    """``cmd`` in ``cwd`` (outside the checkout) with only the venv's bin directory in front of
    the system PATH and no PYTHONPATH, so nothing can come from the checkout's src/."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=900)  # fmt: skip


@pytest.mark.slow
def test_the_installed_package_carries_its_schema_and_default_config(installed, tmp_path):
    probe = (
        "import nnfield, nnfield.config as c; "
        "print(nnfield.__file__); print(c.SCHEMA_PATH); print(c.DEFAULT_CONFIG_PATH); "
        "print(sorted(c.expand(c.load(c.DEFAULT_CONFIG_PATH))))"
    )
    run = _run(installed, tmp_path, str(installed / "bin/python"), "-c", probe)
    assert run.returncode == 0, run.stderr[-3000:]
    module, schema, default, studies = run.stdout.splitlines()
    site = str(installed / "lib")
    assert module.startswith(site) and schema.startswith(site) and default.startswith(site)
    assert not module.startswith(str(REPO)), module
    assert studies == "['depth', 'hidden', 'learning', 'npoint']"
    # the shipped copies are the checkout's files, byte for byte
    assert Path(schema).read_bytes() == (REPO / "config/schema.yaml").read_bytes()
    assert Path(default).read_bytes() == (REPO / "config/config.yaml").read_bytes()


@pytest.mark.slow
def test_check_config_and_the_workflow_run_from_a_non_editable_install(installed, tmp_path):
    (tmp_path / "small.yaml").write_text(SMALL)
    nnfield = str(installed / "bin/nnfield")
    check = _run(installed, tmp_path, nnfield, "check-config", "small.yaml",
                 "--replace-workflow-config")  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "hidden: 1 points" in check.stdout, check.stdout
    full = _run(installed, tmp_path, nnfield, "check-config", str(REPO / "config/config.yaml"),
               "--replace-workflow-config")  # fmt: skip
    assert full.returncode == 0, (
        full.stderr
    )  # the full default validates against the shipped schema
    run = _run(installed, tmp_path, str(installed / "bin/python"), "-m", "snakemake", "-s",
               str(REPO / "Snakefile"), "--configfile", "small.yaml", "--cores", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert (tmp_path / "results/figures/hidden_entropy.png").stat().st_size > 0
    with xr.open_dataset(tmp_path / "results/hidden/hidden.nc") as ds:
        assert ds.sizes["point"] == 1
