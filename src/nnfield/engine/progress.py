"""Running a shard's blocks one after another, with a progress line in the job's log."""

from __future__ import annotations

import time
from collections.abc import Callable


def run_with_progress(
    block_fn: Callable[[int], tuple],
    blocks: list[int],
    block_size: int,
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> list[tuple]:
    """``block_fn(b)`` (fetched to the host) for each block; a progress line (blocks done,
    networks/s, elapsed time and the time left at the rate so far) about every 10 seconds and
    after the last block."""
    import jax

    results = []
    start = last = time.perf_counter()
    for i, b in enumerate(blocks):
        results.append(jax.device_get(block_fn(b)))
        now = time.perf_counter()
        if progress is not None and (now - last > 10 or i + 1 == len(blocks)):
            rate = (i + 1) * block_size / (now - start)
            left = (now - start) * (len(blocks) - i - 1) / (i + 1)
            progress(
                f"{label} block {i + 1}/{len(blocks)} ({100 * (i + 1) / len(blocks):.0f}%), "
                f"{rate:,.0f} networks/s, elapsed {now - start:.1f} s, ETA {left:.0f} s"
            )
            last = now
    return results
