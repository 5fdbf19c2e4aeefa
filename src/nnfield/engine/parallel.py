"""Map a function over many files in worker processes: aggregating and checking sweeps of 10^4
point files on all CPUs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_processes(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int | None = None,
    min_parallel: int = 50,
    progress: Callable[[str], None] | None = None,
    message: str = "done {done}/{total}",
) -> list[R]:
    """``[fn(item) for item in items]``, in ``workers`` spawned processes (default: the CPUs
    this process may use) when there are at least ``min_parallel`` items, else here.  ``fn``
    must be importable (module level).  ``progress(message)`` every 1000 items."""
    workers = workers or len(os.sched_getaffinity(0))
    pool = None
    if workers < 2 or len(items) < min_parallel:
        results = map(fn, items)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: the parent may hold JAX's threads
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(fn, items, chunksize=64)
    out = []
    try:
        for i, result in enumerate(results):
            out.append(result)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(message.format(done=i + 1, total=len(items)))
    finally:
        if pool is not None:
            pool.shutdown()
    return out
