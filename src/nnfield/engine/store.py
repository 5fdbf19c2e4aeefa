"""NetCDF storage: atomic writes with provenance, and checked reads.

Every file carries CF-style metadata (``long_name`` and ``units`` on every variable, named
dimensions) and global provenance attributes.  Files are written to a temporary name in the same
directory and renamed, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from nnfield import SCHEMA_VERSION, __version__
from nnfield.engine.atomic import atomic_path, describe_write_failure


class DataFileError(RuntimeError):
    """A stored file is missing, unreadable, or does not follow the expected layout."""


def backend_name() -> str:
    """The JAX device simulations run on, e.g. ``cpu:cpu`` or ``gpu:NVIDIA H100``."""
    import jax

    dev = jax.devices()[0]
    return f"{dev.platform}:{getattr(dev, 'device_kind', dev.platform)}"


def provenance(study: str, spec=None, backend: str = "", config_sha256: str = "") -> dict:
    """Global attributes of every nnfield file (no wall-clock times: data stay reproducible).

    A point or shard file (``spec``, a ``config.PointSpec``) also stores its whole spec as JSON
    (``params``), its name (``point``) and the spec's hash (``config_sha256``): every stored
    coordinate can be checked against them (:func:`check_identity`).  A study dataset has an
    empty ``point`` and the hash of its points (``config_sha256``)."""
    attrs = {
        "Conventions": CONVENTIONS,
        "nnfield_version": __version__,
        "schema_version": np.int32(SCHEMA_VERSION),
        "study": study,
        "point": spec.name if spec is not None else "",
        "config_sha256": spec.sha256 if spec is not None else config_sha256,
    }
    if spec is not None:
        attrs["params"] = spec.to_json()
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


CONVENTIONS = "CF-1.8"
"""The CF version whose rules the files are checked against (cfchecker in
tests/test_results_api.py)."""

DIMENSIONLESS_UNITS = {"nats": "nats", "nats^2": "nats squared"}
"""Units that are not UDUNITS units: written as CF's dimensionless ``"1"``, with the unit
named in the long_name instead (an entropy in nats is a pure number)."""


def cf_units(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` whose entropies carry CF-valid units: ``units = "1"`` and
    ``long_name`` ending in ``(nats)`` (or ``(nats squared)``)."""
    ds = ds.copy(deep=False)
    for var in ds.variables.values():
        named = DIMENSIONLESS_UNITS.get(var.attrs.get("units"))
        if named is not None:
            long_name = str(var.attrs.get("long_name", ""))
            suffix = f" ({named})"
            var.attrs["long_name"] = long_name if long_name.endswith(suffix) else long_name + suffix
            var.attrs["units"] = "1"
    return ds


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


def write_dataset(
    ds: xr.Dataset, path: str | os.PathLike, before_rename: Callable[[], None] | None = None
) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same directory, then rename),
    in canonical variable order (so equal data give equal bytes).

    Numeric arrays are zlib-compressed (level 4) with a Fletcher-32 checksum per chunk, which
    the HDF5 library verifies on every read: a flipped bit in any array (coordinates included)
    fails the reader instead of changing a value.
    """
    path = Path(path)
    check_metadata(ds)
    ds = canonical(cf_units(ds))
    encoding = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "fiub" and var.ndim > 0:
            encoding[name] = {"zlib": True, "complevel": 4, "fletcher32": True}
    try:
        with atomic_path(path, before_rename=before_rename) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
            _stamp_digest(tmp)
    except (OSError, RuntimeError) as err:  # HDF5 reports a full disk as RuntimeError
        raise DataFileError(describe_write_failure(path, err)) from err
    return path


DIGEST_ATTR = "data_sha256"
"""Global attribute holding the sha256 of everything else in the file (:func:`_digest`)."""


def _update(h, value) -> None:
    array = np.asarray(value)
    if array.dtype.kind in "OUS":
        h.update(repr(array.tolist()).encode())
    else:
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())


def _digest(nc) -> str:
    """sha256 of an open netCDF4 file's content as read back: every variable's name,
    dimensions, type, values and attributes, and every global attribute but the digest itself.
    Stored in the file when it is written and checked by every reader, so that a damaged file
    whose HDF5 structure still reads (a flipped bit in a filter's or a type's parameters, which
    no chunk checksum covers) cannot change a value in silence."""
    nc.set_auto_mask(False)
    h = hashlib.sha256()
    for name in sorted(nc.variables):
        var = nc.variables[name]
        h.update(f"\0var {name} {var.dimensions}".encode())
        _update(h, var[...])
        for attr in sorted(var.ncattrs()):
            h.update(f"\0attr {attr}".encode())
            _update(h, var.getncattr(attr))
    for attr in sorted(nc.ncattrs()):
        if attr != DIGEST_ATTR:
            h.update(f"\0global {attr}".encode())
            _update(h, nc.getncattr(attr))
    return h.hexdigest()


def _stamp_digest(path: Path) -> None:
    """Store the digest of a just-written file in it."""
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        nc.setncattr(DIGEST_ATTR, _digest(nc))


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
    import netCDF4

    path = Path(path)
    with _reading(path), xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    check_layout(ds, path, study=study)
    with _reading(path), netCDF4.Dataset(path) as nc:  # what xarray read is what was written
        digest_ok = str(getattr(nc, DIGEST_ATTR, None)) == _digest(nc)
    if not digest_ok:
        raise DataFileError(f"{path}: content does not match its {DIGEST_ATTR} (damaged file)")
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
        digest_ok = str(attrs.get(DIGEST_ATTR)) == _digest(nc)
    raw = RawFile(variables, attrs)
    if not digest_ok:
        check_layout(raw, path, study=study)  # another schema version says so first
        raise DataFileError(f"{path}: content does not match its {DIGEST_ATTR} (damaged file)")
    check_layout(raw, path, study=study, required=required)
    return raw


def read_identity(path: str | os.PathLike) -> tuple[str, str]:
    """(point, config_sha256) of a point file, from its attributes alone."""
    import netCDF4

    path = Path(path)
    with _reading(path), netCDF4.Dataset(path) as nc:
        return str(getattr(nc, "point", "")), str(getattr(nc, "config_sha256", ""))


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
    if str(ds.attrs.get("point", "")):  # a point or shard file (a study dataset has no point)
        check_identity(ds, path)


IDENTITY_VARIABLES = {"x": "inputs"}
"""Stored variables that hold a spec parameter under another name (variable: parameter)."""


def _stored(value) -> np.ndarray | str:
    value = value.values if hasattr(value, "values") else value
    array = np.asarray(value)
    if array.dtype.kind in "OUS":
        return str(array.item() if array.ndim == 0 else array.tolist())
    return array


def _shown(value) -> str:
    stored = _stored(value)
    return repr(stored if isinstance(stored, str) else stored.tolist())


def _same(stored, wanted) -> bool:
    """True if a stored attribute or variable holds exactly the spec's value."""
    stored = _stored(stored)
    if isinstance(wanted, str) or isinstance(stored, str):
        return str(stored) == str(wanted)
    try:
        wanted = np.asarray(wanted, dtype=np.float64)
        return stored.size == wanted.size and bool(
            np.array_equal(stored.astype(np.float64).reshape(wanted.shape), wanted)
        )
    except (TypeError, ValueError):
        return False


def check_identity(ds: xr.Dataset | RawFile, path: str | os.PathLike) -> None:
    """Check a point or shard file against the spec it stores (``params``): the spec's hash is
    the file's ``config_sha256``, its name and study are the file's, and every stored
    coordinate and attribute named like a spec parameter (plus ``seed``, ``n_blocks`` and the
    inputs ``x``) holds exactly the spec's value.  A flipped bit in ``width`` or ``family``
    then fails here instead of silently moving the point."""
    from nnfield.config import ConfigError, PointSpec

    text = ds.attrs.get("params")
    if text is None:
        raise DataFileError(f"{path}: no stored point spec ('params' attribute); written by an "
                            "older nnfield: rerun the rule that made it")  # fmt: skip
    try:
        spec = PointSpec.from_json(str(text))
    except ConfigError as err:
        raise DataFileError(f"{path}: stored point spec is damaged ({err})") from err
    if spec.sha256 != str(ds.attrs.get("config_sha256")):
        raise DataFileError(f"{path}: stored point spec does not hash to the file's "
                            "config_sha256 (damaged file)")  # fmt: skip
    if spec.name != str(ds.attrs.get("point")) or spec.study != str(ds.attrs.get("study")):
        said = f"{ds.attrs.get('study')}/{ds.attrs.get('point')}"
        raise DataFileError(f"{path}: stored point spec is of {spec.study}/{spec.name}, the "
                            f"file says {said}")  # fmt: skip
    p = spec.params
    wanted = {**p, "seed": spec.seed}
    if "networks" in p and "block_size" in p:
        wanted["n_blocks"] = p["networks"] // p["block_size"]
    for name, value in wanted.items():
        if name in ds.attrs and not _same(ds.attrs[name], value):
            raise DataFileError(f"{path}: stored attribute {name} = {_shown(ds.attrs[name])} "
                                f"differs from the point's spec ({value!r})")  # fmt: skip
        var = ds.variables.get(name) if name not in ("block",) else None
        if var is not None and np.ndim(_stored(var)) == 0 and not _same(var, value):
            raise DataFileError(f"{path}: stored coordinate {name} = {_shown(var)} differs "
                                f"from the point's spec ({value!r})")  # fmt: skip
    for name, key in IDENTITY_VARIABLES.items():
        if name in ds.variables and key in p and not _same(ds.variables[name], p[key]):
            raise DataFileError(f"{path}: stored {name} differs from the point's {key}")


def annotate(ds: xr.Dataset, meta: Mapping[str, tuple[str, str]]) -> xr.Dataset:
    """Set ``long_name`` and ``units`` from ``meta[name] = (long_name, units)`` where present."""
    for name, (long_name, units) in meta.items():
        if name in ds.variables:
            ds[name].attrs.update(long_name=long_name, units=units)
    return ds
