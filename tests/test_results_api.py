"""Results for users: nnfield.open_results / open_points on the tiny workflow's run, the README's
Python example, sweep parameters as coordinates, and a CF check of the files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

import nnfield
from nnfield.results import point_files

REPO = Path(__file__).resolve().parents[1]
CF_TABLES = REPO / "tests/data/cf"


@pytest.mark.slow
def test_open_results_is_a_tree_of_the_study_datasets_with_the_run_config(finished_run):
    tree = nnfield.open_results(finished_run / "results")
    assert sorted(tree.children) == ["depth", "hidden", "learning", "npoint"]
    assert sorted(tree.attrs["studies"]) == sorted(tree.children)
    assert tree.attrs["studies"]["hidden"]["seed"] == 4  # the run's config (TINY)
    for study, node in tree.children.items():
        on_disk = xr.load_dataset(finished_run / "results" / study / f"{study}.nc")
        xr.testing.assert_identical(node.to_dataset(), on_disk)
    with pytest.raises(FileNotFoundError, match="no run record"):
        nnfield.open_results(finished_run / "results" / "hidden")


@pytest.mark.slow
def test_sweep_parameters_are_coordinates_of_point(finished_run):
    tree = nnfield.open_results(finished_run / "results")
    hidden = tree["hidden"].to_dataset()
    for name in ("ensemble", "weights", "contraction", "coupling", "gain", "noise"):
        assert name in hidden.coords and hidden[name].dims == ("point",), name
    rings = hidden.sel(point=hidden.ensemble == "rings")
    assert sorted(rings.coupling.values.tolist()) == [-0.1, 0.0, 0.05, 0.1]
    kept = hidden.ep.where(hidden.coupling > 0, drop=True)
    assert kept.sizes["point"] == 2 and (kept.coupling > 0).all()
    learning = tree["learning"].to_dataset()
    for name in ("problem", "kind", "optimizer", "learning_rate", "temperature"):
        assert name in learning.coords and learning[name].dims == ("point",), name
    assert learning.sel(point=learning.temperature == 0.5).sizes["point"] == 2


@pytest.mark.slow
def test_open_points_combines_point_files_with_their_parameters(finished_run):
    results = finished_run / "results"
    rings = nnfield.open_points(results, "hidden", ensemble="rings")
    study = nnfield.open_results(results)["hidden"].to_dataset()
    assert rings.sizes["point"] == 4
    for point in rings.point.values:  # each point's coordinates are its study-dataset values
        row = study.sel(point=point)
        assert rings.sel(point=point).coupling.item() == row.coupling.item()
        assert rings.sel(point=point).contraction.item() == row.contraction.item()
    assert isinstance(rings["medium"].data, __import__("dask").array.Array)  # lazy
    counts = rings["count"].sum("block").compute()
    assert (counts == 200).all()  # networks of the TINY hidden study, per point
    npoint = nnfield.open_points(results, "npoint", family="relu")
    assert sorted(npoint.width.values.tolist()) == [3, 30] and npoint.sizes["point"] == 2
    files = point_files(results, "npoint", family="erf")
    by_hand = xr.open_mfdataset(files, combine="nested", concat_dim="point",
                                coords="different", compat="no_conflicts",
                                preprocess=nnfield.point_coords)  # fmt: skip
    assert by_hand.width.dims == ("point",) and by_hand.arch.item() == "erf"  # equal: scalar
    with pytest.raises(KeyError, match="no point of hidden has parameter"):
        nnfield.open_points(results, "hidden", ensembel="rings")


@pytest.mark.slow
def test_the_readme_python_example_draws_a_panel(finished_run, tmp_path):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(b for b in blocks if "open_results" in b)
    lines = [line for line in example.splitlines() if line.strip()]
    assert len(lines) == 3  # three lines, the import included
    script = ("import matplotlib\nmatplotlib.use('Agg')\n" + example
              + "import matplotlib.pyplot as plt\nax = plt.gca()\n"
              "assert len(ax.lines) >= 2, len(ax.lines)\nplt.savefig('panel.png')\n")  # fmt: skip
    shutil.copytree(finished_run / "results", tmp_path / "results")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "panel.png").stat().st_size > 1000


def _cfchecks() -> str | None:
    return os.environ.get("NNFIELD_CFCHECKS") or shutil.which("cfchecks")


# cfchecker 4.1.0 (the newest release) does not know that CF-1.8 section 2.2 allows the netCDF-4
# string type; this one message is expected, everything else fails the test.
STRING_TYPE = re.compile(r"ERROR: \(2\.2\): Invalid variable type: .*vlen types not supported")


def _labels_for_string_coordinates(path: Path, copy: Path) -> set[str]:
    """Copy ``path`` with every string-valued coordinate variable (``point``, ``family``: xarray
    needs them as indexes) renamed to ``NAME_label``, the CF way of labelling a dimension
    (section 6.1); cfchecker 4.1.0 crashes on string coordinate variables (it takes differences
    of their values).  Returns the renamed names."""
    import netCDF4

    shutil.copyfile(path, copy)
    renamed = set()
    with netCDF4.Dataset(copy, "a") as nc:
        for name in list(nc.variables):
            var = nc.variables[name]
            if name in nc.dimensions and var.dtype is str:
                nc.renameVariable(name, f"{name}_label")
                renamed.add(name)
    return renamed


@pytest.mark.slow
@pytest.mark.skipif(_cfchecks() is None and os.environ.get("NNFIELD_REQUIRE_CF") != "1",
                    reason="no cfchecks (pip install cfchecker; needs libudunits2)")  # fmt: skip
def test_files_pass_the_cf_checker(finished_run, tmp_path):
    checker = _cfchecks()
    assert checker, "NNFIELD_REQUIRE_CF=1 but cfchecks is not installed"
    results = finished_run / "results"
    files = [results / s / f"{s}.nc" for s in ("npoint", "depth", "learning", "hidden")]
    for study in ("npoint", "depth", "learning", "hidden"):
        files.append(point_files(results, study)[0])
    tables = ["-s", str(CF_TABLES / "standard-name-table.xml"),
              "-a", str(CF_TABLES / "area-type-table.xml"),
              "-r", str(CF_TABLES / "region-table.xml")]  # fmt: skip
    problems, labelled = [], set()
    for i, path in enumerate(files):
        copy = tmp_path / f"{i}-{path.name}"
        labelled |= _labels_for_string_coordinates(path, copy)
        run = subprocess.run([checker, "-v", "1.8", *tables, str(copy)], capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        lines = (run.stdout + run.stderr).splitlines()
        assert any("ERRORS detected" in line for line in lines), run.stdout[-2000:] + run.stderr
        for line in lines:
            if re.match(r"(ERROR|WARN): |Traceback", line) and not STRING_TYPE.match(line):
                problems.append(f"{path.relative_to(results)}: {line}")
    assert not problems, "\n".join(problems)
    assert labelled == {"point", "family"}, labelled  # the one departure the README names
    # the entropies are dimensionless, their unit named in the long_name
    with xr.open_dataset(results / "learning/learning.nc") as ds:
        assert ds["pi"].attrs["units"] == "1" and ds["pi"].attrs["long_name"].endswith("(nats)")
        units = {str(v.attrs.get("units")) for v in ds.variables.values()}
        assert not any("nats" in u for u in units), units
