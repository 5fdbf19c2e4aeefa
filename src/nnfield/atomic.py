"""Atomic file output: every file nnfield writes appears whole under its name, or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files a killed writer of ``path`` left behind (``.NAME.*.tmp``; never
    trusted by any reader).  Each output has one writer at a time, so they are stale."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, remove_stale: bool = True) -> Iterator[Path]:
    """A temporary path ``.NAME.*.tmp`` beside ``path`` to write to; renamed onto ``path`` when
    the block succeeds, deleted when it fails.  Stale temporaries of ``path`` are removed first,
    and the file gets the usual permissions (mkstemp's are 0600; results are meant to be
    shared)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if remove_stale:  # a glob of the folder: skipped by writers of many files in one folder
        remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
