"""Block bookkeeping shared by the studies: which blocks a shard computes, and joining shards.

Raw datasets hold per-block sums along a ``block`` dimension; keys derive from the block index,
so a point's numbers never depend on how its blocks are split into shards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)

__all__ = ["NonFiniteError", "analyze_each", "drop_nonfinite_blocks", "merge", "report_nonfinite",
           "shard_blocks"]  # fmt: skip


class NonFiniteError(ValueError):
    """A point has too few blocks free of non-finite networks for estimates with errors."""


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


def check_family(points: Sequence[xr.Dataset], attrs: Sequence[str]) -> None:
    """Refuse a family whose points differ in what the analysis takes from the first of them
    (the prior ``attrs`` and the inputs ``x``): files of different priors would otherwise be
    analysed with one prior in silence."""
    first = points[0]
    for ds in points[1:]:
        for name in attrs:
            if str(ds.attrs.get(name)) != str(first.attrs.get(name)):
                raise ValueError(
                    f"points {first.attrs.get('point')} and {ds.attrs.get('point')} of one "
                    f"family differ in {name} ({first.attrs.get(name)} and {ds.attrs.get(name)}): "
                    "the points of a family must share its prior and inputs"
                )
        if not np.array_equal(ds["x"].values, first["x"].values):
            raise ValueError(f"points {first.attrs.get('point')} and {ds.attrs.get('point')} of "
                             "one family have different inputs x")  # fmt: skip


def report_nonfinite(point: str, counts: np.ndarray, blocks: Sequence[int], what: str) -> None:
    """Log one warning line per point naming the blocks with non-finite networks (``counts``
    per block of ``blocks``)."""
    counts = np.asarray(counts)
    total = int(counts.sum())
    if total:
        bad = [int(b) for b, c in zip(blocks, counts, strict=True) if c]
        log.warning("%s: %d network(s) with non-finite %s in block(s) %s%s", point, total, what,
                    bad[:10], " ..." if len(bad) > 10 else "")  # fmt: skip


def drop_nonfinite_blocks(ds: xr.Dataset) -> tuple[xr.Dataset, int, int]:
    """``ds`` without the blocks that hold a network with a NaN/inf number (variable
    ``nonfinite``), the number of such networks and of dropped blocks.

    For studies whose sums were accumulated layer by layer or record by record before a network
    overflowed, the block is the smallest unit that can be removed; blocks are i.i.d., so the
    remaining ones still give unbiased block statistics of the networks that stayed finite.
    Raises NonFiniteError naming the point when fewer than 2 blocks are left (no error bars);
    the study's analysis then leaves the point out and lists it in ``refused_points``.
    """
    if "nonfinite" not in ds:
        return ds, 0, 0
    per_block = ds["nonfinite"].values
    keep = np.flatnonzero(per_block == 0)
    networks, dropped = int(per_block.sum()), int(per_block.size - keep.size)
    if not dropped:
        return ds, 0, 0
    point = ds.attrs.get("point", "?")
    if keep.size < 2:
        raise NonFiniteError(
            f"point {point}: {networks} network(s) became non-finite (NaN/inf) and only "
            f"{keep.size} of {per_block.size} blocks are clean, too few for error bars; use "
            "dtype float64 or a more stable setting for this point"
        )
    log.warning("%s: dropped %d of %d blocks holding %d network(s) with non-finite numbers",
                point, dropped, per_block.size, networks)  # fmt: skip
    return ds.isel(block=keep), networks, dropped


def analyze_each(
    points: Sequence[xr.Dataset], analyze_one: Callable[[xr.Dataset], xr.Dataset]
) -> tuple[list[xr.Dataset], str]:
    """``analyze_one`` of every point, and the names of the points it refused for non-finite
    networks (NonFiniteError), ``"; "``-joined for the study's ``refused_points`` attribute.
    A refused point is left out with an error line; if every point is, NonFiniteError."""
    results, refused = [], []
    for i, ds in enumerate(points):
        point = str(ds.attrs.get("point"))
        try:
            results.append(analyze_one(ds))
        except NonFiniteError as err:
            log.error("%s; left out of the study dataset", err)
            refused.append(point)
            continue
        log.info("analysed %s (%d/%d)", point, i + 1, len(points))
    if not results:
        raise NonFiniteError(f"every point was refused for non-finite networks: {refused}")
    return results, "; ".join(refused)
