"""Reading a study's point files for its analysis (the studies' ``analyze_files``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from nnfield.engine.store import points_sha256, read_dataset

log = logging.getLogger(__name__)


def analyze_read_points(
    paths: Sequence[str | Path],
    study: str,
    required: Sequence[str],
    analyze: Callable[[list[xr.Dataset], Mapping[str, Any]], xr.Dataset],
    options: Mapping[str, Any],
    progress: Callable[[str], None] | None = None,
) -> xr.Dataset:
    """``analyze(points, options)`` of the point files ``paths`` (each read with its integrity
    checks, holding the variables ``required``), with the hash of the points as the study
    dataset's ``config_sha256`` (nnfield.engine.store.points_sha256)."""
    points = []
    for i, path in enumerate(paths):
        points.append(read_dataset(path, study=study, required=tuple(required)))
        if progress is not None and (i + 1) % 500 == 0:
            progress(f"read {i + 1}/{len(paths)} point files")
    ds = analyze(points, options)
    ds.attrs["config_sha256"] = points_sha256(
        (str(p.attrs["point"]), str(p.attrs["config_sha256"])) for p in points
    )
    return ds
