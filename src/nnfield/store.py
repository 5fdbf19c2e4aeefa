"""NetCDF storage: atomic writes with provenance, and checked reads.

Every file carries CF-style metadata (``long_name`` and ``units`` on every variable, named
dimensions) and global provenance attributes.  Files are written to a temporary name in the same
directory and renamed, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from nnfield import SCHEMA_VERSION, __version__
from nnfield.atomic import atomic_path


class DataFileError(RuntimeError):
    """A stored file is missing, unreadable, or does not follow the expected layout."""


def backend_name() -> str:
    """The JAX device simulations run on, e.g. ``cpu:cpu`` or ``gpu:NVIDIA H100``."""
    import jax

    dev = jax.devices()[0]
    return f"{dev.platform}:{getattr(dev, 'device_kind', dev.platform)}"


def provenance(study: str, point: str = "", config_sha256: str = "", backend: str = "") -> dict:
    """Global attributes of every nnfield file (no wall-clock times: data stay reproducible)."""
    attrs = {
        "Conventions": "CF-1.10",
        "nnfield_version": __version__,
        "schema_version": np.int32(SCHEMA_VERSION),
        "study": study,
        "point": point,
        "config_sha256": config_sha256,
    }
    if backend:
        attrs["backend"] = backend
    try:
        import jax

        attrs["jax_version"] = jax.__version__
    except ImportError:  # pragma: no cover - jax is a hard dependency
        pass
    return attrs


def points_sha256(points: Iterable[tuple[str, str]]) -> str:
    """Hash of a study's points as (point name, config_sha256) pairs, order-free: stored as the
    study dataset's ``config_sha256``, so a dataset shows which sweep it was made from."""
    text = "\n".join(f"{name} {sha}" for name, sha in sorted(points))
    return hashlib.sha256(text.encode()).hexdigest()


def check_metadata(ds: xr.Dataset) -> None:
    """Raise if any variable lacks ``long_name``/``units`` or any dimension is unnamed."""
    for name, var in ds.variables.items():
        if name in ds.dims and name not in ds.data_vars and var.dtype.kind in "OUS":
            continue
        for attr in ("long_name", "units"):
            if attr not in var.attrs:
                raise ValueError(f"variable {name!r} has no {attr!r} attribute")
    for dim in ds.dims:
        if str(dim).startswith("dim_"):
            raise ValueError(f"dimension {dim!r} is unnamed")


def canonical(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with coordinates, then data variables, in name order: the file's bytes must not
    depend on the order a dataset was assembled in (set iteration varies with the hash seed)."""
    return xr.Dataset(
        data_vars={name: ds.variables[name] for name in sorted(map(str, ds.data_vars))},
        coords={name: ds.variables[name] for name in sorted(map(str, ds.coords))},
        attrs=dict(ds.attrs),
    )


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same directory, then rename),
    in canonical variable order (so equal data give equal bytes).

    Numeric variables are zlib-compressed (level 4).
    """
    path = Path(path)
    check_metadata(ds)
    ds = canonical(ds)
    encoding = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiub" and var.ndim > 0:
            encoding[name] = {"zlib": True, "complevel": 4}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return path


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure to open or read ``path`` into a DataFileError naming the file."""
    try:
        yield
    except FileNotFoundError as err:
        raise DataFileError(f"{path}: file not found") from err
    except Exception as err:
        raise DataFileError(f"{path}: not a readable NetCDF file ({err})") from err


def read_dataset(
    path: str | os.PathLike,
    study: str | None = None,
    required: Iterable[str] = (),
) -> xr.Dataset:
    """Open a nnfield NetCDF file fully into memory, checking its layout.

    Raises DataFileError naming the file if it cannot be read, was written with another
    ``schema_version``, belongs to another study, or lacks a required variable.
    """
    path = Path(path)
    with _reading(path), xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    check_layout(ds, path, study=study, required=required)
    return ds


class RawVariable:
    """One variable of a RawFile: ``.values`` as in xarray."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values


class RawFile:
    """A point file read into plain NumPy arrays (no xarray objects): the fast path for
    aggregating sweeps of many points.  Supports ``ds[name].values``, ``name in ds``,
    ``ds.attrs`` and ``ds.variables``."""

    def __init__(self, variables: dict[str, np.ndarray], attrs: dict) -> None:
        self.variables = variables
        self.attrs = attrs

    def __getitem__(self, name: str) -> RawVariable:
        return RawVariable(self.variables[name])

    def __contains__(self, name: str) -> bool:
        return name in self.variables


def read_raw(
    path: str | os.PathLike, study: str | None = None, required: Iterable[str] = ()
) -> RawFile:
    """``read_dataset``'s checks and errors, reading with netCDF4 directly (about half the cost
    of opening with xarray; coordinates come back as plain variables)."""
    import netCDF4

    path = Path(path)
    with _reading(path), netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        variables = {name: var[...] for name, var in nc.variables.items()}
        attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
    raw = RawFile(variables, attrs)
    check_layout(raw, path, study=study, required=required)
    return raw


def check_layout(
    ds: xr.Dataset | RawFile,
    path: str | os.PathLike,
    study: str | None = None,
    required: Iterable[str] = (),
) -> None:
    """Validate the provenance and required variables of an opened dataset."""
    version = ds.attrs.get("schema_version")
    if isinstance(version, np.integer | int):
        version = int(version)
    if version != SCHEMA_VERSION:
        raise DataFileError(
            f"{path}: schema_version {version!r}, expected {SCHEMA_VERSION} "
            "(written by another nnfield version; rerun the rule that made it)"
        )
    if study is not None and ds.attrs.get("study") != study:
        raise DataFileError(f"{path}: study {ds.attrs.get('study')!r}, expected {study!r}")
    missing = [name for name in required if name not in ds.variables]
    if missing:
        raise DataFileError(f"{path}: missing variables {missing}")


def annotate(ds: xr.Dataset, meta: Mapping[str, tuple[str, str]]) -> xr.Dataset:
    """Set ``long_name`` and ``units`` from ``meta[name] = (long_name, units)`` where present."""
    for name, (long_name, units) in meta.items():
        if name in ds.variables:
            ds[name].attrs.update(long_name=long_name, units=units)
    return ds
