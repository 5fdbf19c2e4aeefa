"""Atomic file output: every file nnfield writes appears whole under its name, or not at all."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


STALE_SECONDS = 3600.0
"""A temporary file untouched for this long was left by a killed writer (a live writer fills
its file within seconds of opening it: the work is done before)."""


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files a killed writer of ``path`` left behind (``.NAME.*.tmp``; never
    trusted by any reader), once they are STALE_SECONDS old: a younger one may belong to a
    live writer of the same output (an orphaned job and its rerun, say)."""
    now = time.time()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink(missing_ok=True)
        except FileNotFoundError:
            pass


@contextmanager
def atomic_path(
    path: str | os.PathLike,
    remove_stale: bool = True,
    before_rename: Callable[[], None] | None = None,
) -> Iterator[Path]:
    """A temporary path ``.NAME.*.tmp`` beside ``path`` to write to; flushed to the device
    (fsync) and renamed onto ``path`` when the block succeeds, then the directory is flushed,
    so a power loss leaves the old file or the new one, never an empty one; deleted when the
    block fails.  Stale temporaries of ``path`` are removed first,
    and the file gets the usual permissions (mkstemp's are 0600; results are meant to be
    shared)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if remove_stale:  # a glob of the folder: skipped by writers of many files in one folder
        remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync(tmp)  # the data reach the disk before the name does
        if before_rename is not None:  # a last check (raising leaves nothing behind)
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync(path.parent)  # and the rename itself survives a power loss


def _fsync(path: str | os.PathLike) -> None:
    """Flush a file's (or a directory's) data and metadata to the device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds exactly it (so its
    modification time is when the content last changed); True if written."""
    path = Path(path)
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return True


def describe_write_failure(path: str | os.PathLike, err: BaseException) -> str:
    """One line on why writing ``path`` failed; a full disk says so, and where (libraries such
    as HDF5 report it only as a generic error)."""
    path = Path(path)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        free is not None and free < 2**20
    ):
        left = f"{free} bytes free" if free is not None else "free space unknown"
        return (f"cannot write {path}: no space left on the device holding {path.parent} "
                f"({left}); free space and rerun")  # fmt: skip
    if getattr(err, "errno", None) == errno.EFBIG:
        return f"cannot write {path}: file size limit exceeded (ulimit -f)"
    detail = getattr(err, "strerror", None) or str(err)
    return f"cannot write {path}: {detail}"
