"""The one simulate skeleton: a shard's blocks, the point's key, the study's kernel, the
non-finite report, and the raw dataset with provenance and CF attributes.

A study supplies a kernel (:class:`ShardTask` -> :class:`ShardResult`) and a table of the
variables and coordinates it produces (:class:`Variable`: dims, long_name, units).  The skeleton
owns everything else, so every study's raw files are laid out alike: a ``block`` dimension of
per-block sums (blocks are i.i.d. and their keys derive from the block index, so a point's
numbers never depend on how its blocks are split into shards), the point's provenance first
among the global attributes, then the study's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from nnfield.engine.blocks import report_nonfinite, shard_blocks
from nnfield.engine.keys import point_key
from nnfield.engine.precision import enable_x64
from nnfield.engine.store import annotate, backend_name, provenance

if TYPE_CHECKING:
    from nnfield.config import PointSpec


@dataclass(frozen=True)
class Variable:
    """One variable or coordinate of a raw file: its dimensions and CF attributes."""

    dims: tuple[str, ...]
    long_name: str
    units: str = "1"


@dataclass(frozen=True)
class ShardTask:
    """What a kernel computes: the blocks of one shard of ``spec``, keyed by ``key`` (the
    point's key; block b's networks use keys folded from it and b)."""

    spec: PointSpec
    blocks: range
    key: Any
    progress: Callable[[str], None] | None = None

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.params


@dataclass
class ShardResult:
    """What a kernel returns: arrays with a leading ``block`` axis (or none, for per-point
    values such as the inputs), coordinates other than ``block``, the study's global attributes
    (after the provenance; ``n_blocks`` among them), and per block the count of networks with a
    non-finite number, reported as ``nonfinite_what``."""

    data: dict[str, Any]
    nonfinite: np.ndarray
    nonfinite_what: str
    attrs: dict[str, Any]
    coords: dict[str, Any] = field(default_factory=dict)
    optional: dict[str, Any] = field(default_factory=dict)
    """Variables only some points of the study have, stored after the coordinates."""


def simulate_shard(
    spec: PointSpec,
    shard: int,
    progress: Callable[[str], None] | None,
    kernel: Callable[[ShardTask], ShardResult],
    variables: Mapping[str, Variable],
) -> xr.Dataset:
    """The raw dataset of shard ``shard`` (of ``params['shards']``) of ``spec``.  Switches JAX
    to float64 (nnfield.engine.precision): this is where a study's simulation starts."""
    enable_x64()
    p = spec.params
    blocks = shard_blocks(p["networks"] // p["block_size"], shard, p["shards"])
    task = ShardTask(spec, blocks, point_key(spec.seed, spec.study, spec.name), progress)
    result = kernel(task)
    report_nonfinite(spec.name, result.nonfinite, blocks, result.nonfinite_what)
    return raw_dataset(spec, blocks, result, variables)


def raw_dataset(
    spec: PointSpec, blocks: range, result: ShardResult, variables: Mapping[str, Variable]
) -> xr.Dataset:
    """The raw dataset of ``result`` (the blocks ``blocks`` of ``spec``): each variable with
    the dimensions and CF attributes of ``variables``, the provenance, then the study's
    attributes."""
    if "n_blocks" not in result.attrs:
        raise ValueError(f"study {spec.study}: the kernel's attrs lack n_blocks (merge needs it)")
    coords = {"block": np.asarray(list(blocks), dtype=np.int64), **result.coords}
    ds = xr.Dataset(
        {name: _typed(spec.study, variables, name, value) for name, value in result.data.items()},
        coords={name: _typed(spec.study, variables, name, value) for name, value in coords.items()},
    )
    for name, value in result.optional.items():
        ds[name] = _typed(spec.study, variables, name, value)
    ds.attrs = provenance(spec.study, spec, backend_name())
    ds.attrs.update(result.attrs)
    return annotate(ds, cf_attributes(variables))


def cf_attributes(variables: Mapping[str, Variable]) -> dict[str, tuple[str, str]]:
    """``{name: (long_name, units)}`` of a table of variables (nnfield.engine.store.annotate)."""
    return {name: (v.long_name, v.units) for name, v in variables.items()}


def _typed(study: str, variables: Mapping[str, Variable], name: str, value: Any):
    """``(dims, value)`` from the table, refusing a variable it lacks or of another rank."""
    if name not in variables:
        raise ValueError(f"study {study}: variable {name!r} is not in its table of variables")
    dims = variables[name].dims
    if np.ndim(value) != len(dims):
        raise ValueError(f"study {study}: variable {name!r} has {np.ndim(value)} dimensions, its "
                         f"table says {len(dims)} {dims}")  # fmt: skip
    return (dims, value)
