"""Bad input and a hostile environment give one clear error line (exit 2), never a traceback
and never a partial file: the CLI as the rules and users call it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnfield import config

ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

DEPTH = {"studies": {"depth": {"seed": 5, "networks": 4000, "block_size": 50, "families": [
    {"name": "relu", "activation": "relu", "inputs": [1.0, 0.5], "widths": [4],
     "depths": [60]}]}}}  # fmt: skip
NPOINT = {"studies": {"npoint": {"seed": 1, "networks": 2000, "block_size": 200, "widths": [3],
                                 "families": [{"name": "e", "arch": "erf",
                                               "inputs": [0.5, 1.0]}]}}}  # fmt: skip


def nnfield(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfield", *args], capture_output=True,
                          text=True, env=ENV, timeout=600, cwd=cwd)  # fmt: skip


def one_error_line(run: subprocess.CompletedProcess) -> str:
    """The single ERROR line of a failed run (exit 2, no traceback)."""
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, run.stderr[-2000:]
    return errors[0]


def depth_spec(**params) -> str:
    spec = next(iter(config.expand(config.validate(DEPTH))["depth"].values()))
    return config.PointSpec(spec.study, spec.name, spec.seed, {**spec.params, **params}).to_json()


BILLION_LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
        for a, b in zip("abcdefg", "bcdefgh", strict=True)
    )
    + "studies: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
)


def config_file(tmp_path: Path, text_or_cfg) -> str:
    path = tmp_path / "c.yaml"
    text = text_or_cfg if isinstance(text_or_cfg, str) else yaml.safe_dump(text_or_cfg)
    path.write_text(text)
    return str(path)


def _edited(base: dict, study: str, **changes) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(base))
    fam = cfg["studies"][study]["families"][0]
    for key, value in changes.items():
        (fam if key in fam or key.startswith("sigma") or key == "name" else
         cfg["studies"][study])[key] = value  # fmt: skip
    return cfg


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BILLION_LAUGHS, "YAML anchors and aliases (&name, *name) are not allowed"),
        ("studies:\n  npoint: {seed: 1}\n  npoint: {seed: 2}\n", "duplicate key 'npoint'"),
        (_edited(NPOINT, "npoint", name="e\n"), "'studies.npoint.families[0].name'"),
        (_edited(NPOINT, "npoint", name="e" * 65), "is too long"),
        (
            _edited(NPOINT, "npoint", sigma_w0=0.0, sigma_b0=0.0, sigma_w1=0.0, sigma_b1=0.0),
            "'studies.npoint.families[0].sigma_w1': sigma_w1 and sigma_b1 are both 0",
        ),
        (
            _edited(NPOINT, "npoint", sigma_w0=0.0, sigma_b0=0.0),
            "'studies.npoint.families[0].sigma_w0': the preactivation variance",
        ),
        (
            _edited(NPOINT, "npoint", sigma_b0=0.0, sigma_b1=0.0, inputs=[0.0, 1.0]),
            "'studies.npoint.families[0].inputs[0]': every network's output is 0 at this input",
        ),
        (_edited(NPOINT, "npoint", sigma_w1=1e6), "1000000.0 is greater than the maximum of 1000"),
        (
            _edited(NPOINT, "npoint", widths=[10**9]),
            "GB in one simulate process (5e+09 values per network), more than "
            "limits.process_memory_gb = 16",
        ),
        (_edited(NPOINT, "npoint", networks=10**15), "more than limits.point_core_hours = 1000"),
        (
            _edited(NPOINT, "npoint", sigma_w0=200.0),
            "'studies.npoint.families[0].sigma_w0': the coupling quadrature would need about",
        ),
        (
            _edited(
                NPOINT, "npoint", sigma_w0=60.0, arch="gauss", inputs=[0.02, 0.05], dtype="float64"
            ),
            "the Gauss-net ridge quadrature would need 240000 panels",
        ),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_problem(tmp_path, content, message):
    run = nnfield("check-config", config_file(tmp_path, content))
    line = one_error_line(run)
    assert message in line, line


def test_check_config_on_a_directory(tmp_path):
    assert "is a directory, not a file" in one_error_line(nnfield("check-config", str(tmp_path)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": "4"}, "parameter width = '4' must be a positive integer"),
        ({"width": 0}, "parameter width = 0 must be a positive integer"),
        ({"cw": float("nan")}, "is not a finite number"),
        ({"activation": None}, None),  # an incomplete spec: a key removed below
    ],
)
def test_a_bad_point_spec_is_one_line_and_writes_nothing(tmp_path, params, message):
    out = tmp_path / "x.nc"
    if message is None:
        spec = json.loads(depth_spec())
        del spec["params"]["activation"]
        text, message = json.dumps(spec), "missing parameter 'activation'"
    else:
        text = depth_spec(**params)
    line = one_error_line(nnfield("simulate", "--spec", text, "--out", str(out)))
    assert message in line, line
    assert not out.exists() and not list(tmp_path.iterdir())


def test_out_that_is_a_directory(tmp_path):
    line = one_error_line(nnfield("simulate", "--spec", depth_spec(), "--out", str(tmp_path)))
    assert f"cannot write {tmp_path}: is a directory; give a file name" in line


def test_missing_point_list(tmp_path):
    line = one_error_line(nnfield("analyze", "--study", "depth", "--out", str(tmp_path / "s.nc"),
                                  "--point-list", str(tmp_path / "missing.txt")))  # fmt: skip
    assert f"--point-list {tmp_path / 'missing.txt'}: No such file or directory" in line


@pytest.fixture
def small_disk(tmp_path):
    """A 200 kB tmpfs (needs root: CI runs as root; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_says_so_and_where_and_leaves_nothing(small_disk):
    out = small_disk / "x.nc"
    line = one_error_line(nnfield("simulate", "--spec", depth_spec(networks=40000), "--out",
                                  str(out)))  # fmt: skip
    assert f"cannot write {out}: no space left on the device holding {small_disk}" in line
    assert not list(small_disk.iterdir())


@pytest.mark.parametrize(
    ("cutoff", "sigma_w0", "radius"),
    [(10, 1.0, 1.0), (1000, 30.0, 2.0), (5, 0.5, 0.3), (100, 7.3, 0.9)],
)
def test_config_counts_the_coupling_quadrature_panels_the_theory_uses(cutoff, sigma_w0, radius):
    """The cost bound is checked without importing the theory: its panel count must be the
    theory's (nnfield.studies.npoint.coupling_theory.radial_panels)."""
    from nnfield.studies.npoint.coupling_theory import radial_panels
    from nnfield.studies.npoint.sweep import radial_panel_count

    r, _ = radial_panels(cutoff, 1 / max(1.0, sigma_w0), 16, 1.5 * radius)
    assert radial_panel_count(cutoff, sigma_w0, radius) == len(r) // 16


def test_cli_has_a_version_and_help_for_every_argument_without_raw_rst():
    """`nnfield --version`; every argument of every command explained; no RST markup."""
    import argparse

    from nnfield import __version__
    from nnfield.cli import build_parser

    run = nnfield("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"nnfield {__version__}"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"nnfield {name} {action.dest}: no help text"
        text = sub.format_help()
        assert "``" not in text and ":func:" not in text, (name, text)
    assert "``" not in parser.format_help()


def test_progress_lines_give_rate_elapsed_and_eta():
    from nnfield.engine.progress import run_with_progress

    lines: list[str] = []
    out = run_with_progress(lambda b: (b,), [0, 1, 2], 10, lines.append, "p")
    assert [o[0] for o in out] == [0, 1, 2]
    assert lines and lines[-1].startswith("p block 3/3 (100%), ")
    assert "networks/s, elapsed " in lines[-1] and lines[-1].endswith("ETA 0 s")
