"""Open a run's results for analysis in Python.

- :func:`open_results`: every study dataset of a results folder as one ``xarray.DataTree``, one
  node per study, with the run's validated config as the root's attrs.
- :func:`open_points`: the per-point files of one study as one dataset along ``point``
  (``xarray.open_mfdataset``, lazy, dask-backed), each point's scalar spec parameters as
  coordinates of ``point`` (:func:`point_coords` is the ``preprocess`` that does it).

Both read the run record (``results/config.yaml``, written by the workflow) to know which
studies and points the run holds.  Study datasets are read with their integrity checks
(``nnfield.engine.store.read_dataset``); point files are opened lazily and not checked here (run
``nnfield verify RESULTS`` for that).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xarray as xr


def _record(results: Path) -> dict:
    from nnfield import config
    from nnfield.engine import layout

    path = results / Path(layout.CONFIG_RECORD).name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record; is {results} a results folder written "
                                "by the nnfield workflow?")  # fmt: skip
    return config.validate(config.read_yaml(path))


def open_results(results: str | os.PathLike = "results") -> xr.DataTree:
    """The study datasets of ``results`` as a DataTree: node ``/STUDY`` holds
    ``results/STUDY/STUDY.nc`` (every study of the run that has its dataset), and the root's
    attrs are the run's validated config (top-level keys: ``studies``, ``batching``, ...)."""
    from nnfield.engine.store import read_dataset

    results = Path(results)
    cfg = _record(results)
    nodes: dict[str, xr.Dataset] = {}
    for study in cfg["studies"]:
        path = results / study / f"{study}.nc"
        if path.is_file():
            nodes[f"/{study}"] = read_dataset(path, study=study)
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs = cfg
    return tree


def point_coords(ds: xr.Dataset) -> xr.Dataset:
    """``preprocess`` for ``xarray.open_mfdataset`` over point files: the point's name
    (``point``) and every scalar parameter of its stored spec (``params``: numbers, strings,
    booleans) as scalar coordinates, which concatenation along ``point`` turns into coordinates
    of ``point``.  Names the file already uses (``width``, ``family`` in npoint) are kept."""
    from nnfield.config import PointSpec

    spec = PointSpec.from_json(str(ds.attrs["params"]))
    coords: dict[str, Any] = {"point": spec.name}
    for name, value in spec.params.items():
        if name not in ds.variables and isinstance(value, bool | int | float | str):
            coords[name] = value
    return ds.assign_coords(coords)


def point_files(results: str | os.PathLike, study: str, **where: Any) -> list[Path]:
    """The point files of ``study`` in the run of ``results`` (config order), optionally only
    the points whose spec parameters equal ``where`` (e.g. ``ensemble="rings"``)."""
    from nnfield import config
    from nnfield.engine import layout

    results = Path(results)
    points = config.expand(_record(results)).get(study)
    if points is None:
        raise KeyError(f"study {study!r} is not in the run of {results}")
    unknown = {k for k in where if not any(k in s.params for s in points.values())}
    if unknown:
        raise KeyError(f"no point of {study} has parameter(s) {sorted(unknown)}")
    chosen = [s for s in points.values() if all(s.params.get(k) == v for k, v in where.items())]
    return [results / Path(layout.point_path(s)).relative_to(layout.RESULTS) for s in chosen]


def open_points(results: str | os.PathLike, study: str, **where: Any) -> xr.Dataset:
    """The point files of ``study`` (those matching ``where``) as one lazy dataset along
    ``point`` with the points' scalar parameters as coordinates.  The files must share their
    shapes (select one family, problem or ensemble with ``where`` where shapes differ).  Per-file
    attrs that differ between points are dropped."""
    files = point_files(results, study, **where)
    if not files:
        raise ValueError(f"no point of {study} matches {where}")
    return xr.open_mfdataset(
        files,
        combine="nested",
        concat_dim="point",
        preprocess=point_coords,
        data_vars="all",
        coords="different",
        compat="equals",
        join="outer",
        combine_attrs="drop_conflicts",
        engine="netcdf4",
    )
