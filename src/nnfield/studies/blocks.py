"""Block bookkeeping shared by the studies: which blocks a shard computes, and joining shards.

Raw datasets hold per-block sums along a ``block`` dimension; keys derive from the block index,
so a point's numbers never depend on how its blocks are split into shards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

__all__ = ["merge", "shard_blocks"]


def shard_blocks(n_blocks: int, shard: int, n_shards: int) -> range:
    """Blocks computed by ``shard`` of ``n_shards``: a contiguous, near-equal range."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    return range(shard * n_blocks // n_shards, (shard + 1) * n_blocks // n_shards)


def merge(shards: Sequence[xr.Dataset]) -> xr.Dataset:
    """Join shards of one point along ``block``; every block must appear exactly once."""
    if not shards:
        raise ValueError("merge needs at least one shard")
    points = {ds.attrs.get("point") for ds in shards}
    if len(points) != 1:
        raise ValueError(f"shards belong to different points: {sorted(map(str, points))}")
    hashes = {ds.attrs.get("config_sha256") for ds in shards}
    if len(hashes) != 1:
        raise ValueError("shards were made with different configurations; rerun simulate")
    merged = xr.concat(list(shards), dim="block", data_vars="minimal", coords="minimal")
    merged = merged.sortby("block")
    n_blocks = int(shards[0].attrs["n_blocks"])
    got = merged["block"].values
    if len(got) != n_blocks or np.any(got != np.arange(n_blocks)):
        raise ValueError(
            f"point {points.pop()}: shards hold blocks {got.tolist()[:5]}..., "
            f"expected exactly 0..{n_blocks - 1}"
        )
    merged.attrs = dict(shards[0].attrs)
    return merged
