"""Reliability: non-finite networks are counted and never averaged in, bad files are refused by
the next step naming the file, and the same inputs give byte-identical files."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from nnfield import SCHEMA_VERSION, config
from nnfield.engine.blocks import NonFiniteError, drop_nonfinite_blocks
from nnfield.engine.store import read_dataset, write_dataset
from nnfield.studies import load
from nnfield.studies.depth import analyze as depth
from nnfield.studies.learning import analyze as learning

ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

DEPTH = {"seed": 5, "networks": 600, "block_size": 50,
         "families": [{"name": "relu", "activation": "relu", "inputs": [1.0, 0.5],
                       "widths": [4], "depths": [3]}]}  # fmt: skip
LEARNING = {"seed": 6, "networks": 400, "block_size": 40, "samples": 5,
            "problems": [{"name": "q", "hessian_eigenvalues": [1.0, 0.5], "learning_rates": [0.5],
                          "temperatures": [0.1], "initial": ["broad"], "steps": 20}]}  # fmt: skip


def spec_of(study: str, cfg: dict, **override) -> config.PointSpec:
    spec = next(iter(config.expand(config.validate({"studies": {study: cfg}}))[study].values()))
    if override:  # past the config checks, to provoke what they guard against
        spec = config.PointSpec(spec.study, spec.name, spec.seed, {**spec.params, **override})
    return spec


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def nnfield(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnfield", *args], capture_output=True,
                          text=True, env=ENV, timeout=600)  # fmt: skip


# --- non-finite networks ----------------------------------------------------------------------


def test_depth_overflow_is_counted_and_logged(caplog):
    """C_W = 1e4 over 12 layers overflows float32 fourth powers: counted per block, logged."""
    with caplog.at_level(logging.WARNING):
        raw = load("depth").simulate(spec_of("depth", DEPTH, cw=1e4, depth=12))
    assert int(raw["nonfinite"].sum()) > 0
    assert "non-finite layer statistics" in caplog.text
    healthy = load("depth").simulate(spec_of("depth", DEPTH))
    assert int(healthy["nonfinite"].sum()) == 0 and np.isfinite(healthy["z4"]).all()


def test_a_poisoned_block_is_dropped_not_averaged(caplog):
    """A block holding a non-finite network is removed as a whole: the estimates equal those of
    the data without that block, and the count is reported as a variable and a log line."""
    raw = load("depth").simulate(spec_of("depth", DEPTH))
    poisoned = raw.copy(deep=True)
    poisoned["nonfinite"][3] = 2
    poisoned["z4"][3] = np.nan
    with caplog.at_level(logging.WARNING):
        out = depth.analyze_point(poisoned, {})
    assert int(out["nonfinite"]) == 2 and int(out["dropped_blocks"]) == 1
    assert "dropped 1 of 12 blocks" in caplog.text
    reference = depth.analyze_point(raw.drop_isel(block=3), {})
    assert np.isfinite(out["K"]).all() and np.isfinite(out["kurtosis_neurons"]).all()
    for name in ("K", "kurtosis", "kurtosis_neurons", "var_log_g"):  # var_log_g: NaN if dead
        np.testing.assert_array_equal(out[name], reference[name])
        np.testing.assert_array_equal(out[f"{name}_se"], reference[f"{name}_se"])
    assert int(out["networks"]) == 550


def test_diverging_learning_is_counted_and_refused_by_analysis(caplog):
    """eta A >> 2 diverges to inf: every network is counted, and the analysis refuses the point
    (naming it) instead of averaging infinities."""
    spec = spec_of("learning", LEARNING, learning_rate=1e16)
    with caplog.at_level(logging.WARNING):
        raw = load("learning").simulate(spec)
    assert raw["nonfinite"].values.tolist() == [40] * 10
    assert "400 network(s) with non-finite states" in caplog.text
    with pytest.raises(NonFiniteError, match=f"point {spec.name}: 400 network.*0 of 10 blocks"):
        learning.analyze_point(raw, {})
    healthy = load("learning").simulate(spec_of("learning", LEARNING))
    assert int(healthy["nonfinite"].sum()) == 0
    kept, networks, dropped = drop_nonfinite_blocks(healthy)
    assert kept is healthy and networks == dropped == 0
    # the study goes on without the refused point, and says so
    renamed = raw.assign_attrs(point="problem~q/lr~huge/T~0.1/initial~broad")
    with caplog.at_level(logging.ERROR):
        study = learning.analyze([renamed, healthy], {})
    assert study["point"].values.tolist() == [healthy.attrs["point"]]
    assert study.attrs["refused_points"] == renamed.attrs["point"]
    assert "left out of the study dataset" in caplog.text
    with pytest.raises(NonFiniteError, match="every point was refused"):
        learning.analyze([renamed], {})


# --- bad files are refused by the next step, naming the file ----------------------------------


@pytest.fixture(scope="module")
def depth_point(tmp_path_factory) -> tuple[Path, config.PointSpec]:
    spec = spec_of("depth", DEPTH)
    path = tmp_path_factory.mktemp("point") / "shard-0.nc"
    run = nnfield("-q", "simulate", "--spec", spec.to_json(), "--out", str(path))
    assert run.returncode == 0, run.stderr
    return path, spec


def test_truncated_point_file_is_refused_naming_it(depth_point, tmp_path):
    path, _ = depth_point
    bad = tmp_path / "truncated.nc"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    run = nnfield("analyze", "--study", "depth", "--out", str(tmp_path / "d.nc"), str(bad))
    assert run.returncode == 2
    assert f"{bad}: not a readable NetCDF file" in run.stderr
    assert not (tmp_path / "d.nc").exists()


def test_corrupted_point_file_is_refused_naming_it(depth_point, tmp_path):
    """Flipped bytes inside the compressed data: the HDF5/zlib layer notices on reading."""
    path, _ = depth_point
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4000):
        data[i] ^= 0xFF
    bad = tmp_path / "corrupted.nc"
    bad.write_bytes(bytes(data))
    run = nnfield("analyze", "--study", "depth", "--out", str(tmp_path / "d.nc"), str(bad))
    assert run.returncode == 2 and str(bad) in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "d.nc").exists()


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("width", 5, "stored coordinate width = 5"),
        ("family", "relv", "stored coordinate family"),
        ("seed", 6, "stored attribute seed = 6"),
        ("cw", 2.0000001, "stored attribute cw"),
        ("x", None, "stored x differs"),
        ("params", "{}", "stored point spec is damaged"),
        ("point", "family~relu/width~5/depth~3", "stored point spec is of depth/family~relu"),
    ],
)
def test_a_changed_stored_coordinate_is_refused(depth_point, tmp_path, name, value, what):
    """A flipped bit in a stored coordinate (width, family, inputs, prior, seed) would move the
    point in silence: every reader checks it against the spec the file stores, whose hash is
    the file's config_sha256."""
    path, _ = depth_point
    ds = read_dataset(path)
    if name == "x":
        ds["x"] = ds["x"] * (1 + 2**-40)
    elif name in ds.variables:
        ds[name] = ((), np.asarray(value, dtype=ds[name].dtype), ds[name].attrs)
    else:
        ds.attrs[name] = value
    bad = write_dataset(ds, tmp_path / "bad.nc")
    run = nnfield("analyze", "--study", "depth", "--out", str(tmp_path / "d.nc"), str(bad))
    assert run.returncode == 2 and f"{bad}: {what}" in run.stderr, run.stderr[-2000:]
    assert not (tmp_path / "d.nc").exists()


def test_the_same_point_twice_or_two_priors_in_one_family_are_refused(depth_point, tmp_path):
    """The analysis takes a family's prior from its first point: a second file of the same
    point, or a point of the family with another prior, is refused naming both."""
    path, _ = depth_point
    out = tmp_path / "d.nc"
    run = nnfield("analyze", "--study", "depth", "--out", str(out), str(path), str(path))
    assert run.returncode == 2 and f"{path}: point family~relu/width~4/depth~3 is also in" in (
        run.stderr
    ), run.stderr[-2000:]
    spec = spec_of("depth", {**DEPTH, "families": [{**DEPTH["families"][0], "widths": [5],
                                                    "cw": 1.5}]})  # fmt: skip
    other = tmp_path / "other.nc"
    run = nnfield("-q", "simulate", "--spec", spec.to_json(), "--out", str(other))
    assert run.returncode == 0, run.stderr
    run = nnfield("analyze", "--study", "depth", "--out", str(out), str(path), str(other))
    assert run.returncode == 2 and "of one family differ in cw (2.0 and 1.5)" in run.stderr, (
        run.stderr[-2000:]
    )
    assert not out.exists()


def test_other_schema_version_is_refused_naming_it(depth_point, tmp_path):
    path, _ = depth_point
    ds = read_dataset(path)
    ds.attrs["schema_version"] = np.int32(99)
    old = write_dataset(ds, tmp_path / "old.nc")
    run = nnfield("analyze", "--study", "depth", "--out", str(tmp_path / "d.nc"), str(old))
    assert run.returncode == 2
    assert f"{old}: schema_version 99, expected {SCHEMA_VERSION}" in run.stderr
    study = tmp_path / "study.nc"
    run = nnfield("-q", "analyze", "--study", "depth", "--out", str(study), str(path))
    assert run.returncode == 0, run.stderr
    ds = read_dataset(study)
    ds.attrs["schema_version"] = np.int32(0)
    write_dataset(ds, study)
    run = nnfield("figure", "--name", "depth_flow", "--data", str(study), "--out",
                  str(tmp_path / "f.pdf"), str(tmp_path / "f.png"))  # fmt: skip
    assert run.returncode == 2 and f"{study}: schema_version 0" in run.stderr
    assert not (tmp_path / "f.pdf").exists()


# --- byte-identical outputs ------------------------------------------------------------------


def test_same_spec_gives_byte_identical_point_and_study_files(depth_point, tmp_path):
    path, spec = depth_point
    again = tmp_path / "again.nc"
    assert nnfield("-q", "simulate", "--spec", spec.to_json(), "--out", str(again)).returncode == 0
    assert sha(again) == sha(path)
    studies = []
    for name in ("a.nc", "b.nc"):
        run = nnfield("-q", "analyze", "--study", "depth", "--out", str(tmp_path / name),
                      str(path))  # fmt: skip
        assert run.returncode == 0, run.stderr
        studies.append(sha(tmp_path / name))
    assert studies[0] == studies[1]
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds.attrs["config_sha256"] != ""  # made from exactly this point (nnfield verify)


def test_writer_removes_what_a_killed_writer_left(tmp_path):
    """A temporary file an hour old is a killed writer's: removed.  A fresh one may be a live
    writer's of the same output (an orphaned job and its rerun): kept."""
    from nnfield.engine.atomic import STALE_SECONDS

    stale, live = tmp_path / ".x.nc.abc123.tmp", tmp_path / ".x.nc.def456.tmp"
    stale.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    old = stale.stat().st_mtime - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    ds = xr.Dataset({"v": (("block",), np.arange(3.0), {"long_name": "v", "units": "1"})})
    ds["block"] = ("block", np.arange(3), {"long_name": "block", "units": "1"})
    write_dataset(ds, tmp_path / "x.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "x.nc"]


# --- shard count ------------------------------------------------------------------------------

SHARDED = {
    "npoint": {"seed": 1, "networks": 3000, "block_size": 100, "widths": [5],
               "families": [{"name": "erf", "arch": "erf", "inputs": [0.5, 1.0]}]},
    "depth": DEPTH,
    "learning": {**LEARNING, "problems": [
        *LEARNING["problems"],
        {"name": "ts", "kind": "teacher_student", "widths": [2], "optimizer": "sgld",
         "train_size": 8, "learning_rates": [0.05], "temperatures": [0.01],
         "initial": ["broad"], "steps": 10}]},
    "hidden": {"seed": 4, "networks": 60, "block_size": 6, "steps": 60, "burn_in": 10,
               "time_blocks": 3, "ensembles": [{"name": "c", "weights": "cycle", "neurons": 4,
                                                "contractions": [0.5]}]},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(SHARDED))
def test_study_estimates_do_not_depend_on_the_shard_count(study):
    """Three shards merged give the one-shard raw data and study dataset exactly."""
    from nnfield.studies import load

    runs = load(study)
    cfg = config.validate({"studies": {study: {**SHARDED[study], "shards": 1}}})
    sharded_cfg = config.validate({"studies": {study: {**SHARDED[study], "shards": 3}}})
    whole = [runs.simulate(spec, 0) for spec in config.expand(cfg)[study].values()]
    merged = [runs.merge([runs.simulate(spec, k) for k in range(3)])
              for spec in config.expand(sharded_cfg)[study].values()]  # fmt: skip
    for a, b in zip(whole, merged, strict=True):
        xr.testing.assert_equal(a, b)
    options = cfg["studies"][study].get("analysis", {})
    xr.testing.assert_equal(runs.analyze(whole, options), runs.analyze(merged, options))


@pytest.mark.slow
def test_study_dataset_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    """Two analyze processes with different string-hash seeds (set iteration order) write the
    same bytes: learning mixes kinds, whose missing variables are NaN-filled."""
    cfg = SHARDED["learning"]
    paths = []
    for i, spec in enumerate(config.expand(config.validate({"studies": {"learning": cfg}}))[
            "learning"].values()):  # fmt: skip
        paths.append(write_dataset(load("learning").simulate(spec), tmp_path / f"p{i}.nc"))
    digests = []
    for seed in ("1", "2", "3"):
        out = tmp_path / f"study-{seed}.nc"
        cmd = [sys.executable, "-m", "nnfield", "-q", "analyze", "--study", "learning", "--out",
               str(out), *map(str, paths)]  # fmt: skip
        env = {**ENV, "PYTHONHASHSEED": seed}
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stderr
        digests.append(sha(out))
    assert len(set(digests)) == 1
