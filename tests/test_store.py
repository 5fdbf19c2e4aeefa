"""NetCDF storage: metadata, atomic writes, checked reads."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from nnfield.engine.store import DataFileError, provenance, read_dataset, write_dataset


def dataset(version=None):
    ds = xr.Dataset({"v": (("block",), np.arange(3.0))}, coords={"block": np.arange(3)})
    ds["v"].attrs.update(long_name="a value", units="1")
    ds["block"].attrs.update(long_name="block", units="1")
    ds.attrs = provenance("npoint", config_sha256="abc")
    if version is not None:
        ds.attrs["schema_version"] = np.int32(version)
    return ds


def test_roundtrip_with_compression_and_no_leftovers(tmp_path):
    path = write_dataset(dataset(), tmp_path / "sub" / "a.nc")
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.nc"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # readable by the group, not 0600
    back = read_dataset(path, study="npoint", required=["v"])
    np.testing.assert_array_equal(back["v"].values, np.arange(3.0))
    assert back.attrs["Conventions"] == "CF-1.8"
    with xr.open_dataset(path) as raw:
        assert raw["v"].encoding.get("zlib") is True


def test_missing_metadata_is_refused(tmp_path):
    ds = dataset()
    del ds["v"].attrs["units"]
    with pytest.raises(ValueError, match="units"):
        write_dataset(ds, tmp_path / "a.nc")
    assert not list(tmp_path.iterdir())


def test_other_schema_version_names_the_file(tmp_path):
    path = write_dataset(dataset(version=99), tmp_path / "old.nc")
    with pytest.raises(DataFileError, match=r"old\.nc.*schema_version"):
        read_dataset(path)


def test_truncated_file_names_the_file(tmp_path):
    path = write_dataset(dataset(), tmp_path / "t.nc")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFileError, match=r"t\.nc"):
        read_dataset(path)


def test_missing_variable_and_wrong_study(tmp_path):
    path = write_dataset(dataset(), tmp_path / "a.nc")
    with pytest.raises(DataFileError, match="missing variables"):
        read_dataset(path, required=["sum_f4"])
    with pytest.raises(DataFileError, match="study"):
        read_dataset(path, study="depth")


def test_the_file_and_its_directory_are_flushed_before_and_after_the_rename(tmp_path, monkeypatch):
    """Durability: fsync of the temporary file before the rename (a power loss never leaves an
    empty file under the final name) and of the directory after it."""
    import nnfield.engine.atomic as atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    path = write_dataset(dataset(), tmp_path / "a.nc")
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "rename", "fsync"], events
    assert events[0][1].endswith(".tmp") and events[1][1] == str(path)
    assert events[2][1] == str(tmp_path)
