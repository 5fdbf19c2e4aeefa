"""The one simulate skeleton: a shard's blocks, the point's key, the study's kernel, the
non-finite report, and the raw dataset with provenance and CF attributes.

A study supplies a per-block kernel (:class:`BlockKernel`, made for one shard by its
``prepare(task)``) and a table of the variables and coordinates it produces (:class:`Variable`:
dims, long_name, units).  The skeleton owns everything else: the shard's block range, the
point's key, float64, the loop over blocks with its progress line, the non-finite report and
count, and the file's layout, so every study's raw files are laid out alike: a ``block``
dimension of per-block sums (blocks are i.i.d. and their keys derive from the block index, so a
point's numbers never depend on how its blocks are split into shards), the point's provenance
first among the global attributes, then the study's own, with ``n_blocks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from nnfield.config import ConfigError
from nnfield.engine.blocks import report_nonfinite, shard_blocks
from nnfield.engine.keys import point_key
from nnfield.engine.precision import enable_x64
from nnfield.engine.progress import run_with_progress
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

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.params


@dataclass
class ShardResult:
    """What a kernel's ``finish`` returns: arrays with a leading ``block`` axis (or none, for
    per-point values such as the inputs), coordinates other than ``block``, the study's global
    attributes (after the provenance; the engine adds ``n_blocks``, and refuses one that is not
    networks // block_size), and per block the count of networks with a non-finite number,
    reported as ``nonfinite_what``."""

    data: dict[str, Any]
    nonfinite: np.ndarray
    nonfinite_what: str
    attrs: dict[str, Any]
    coords: dict[str, Any] = field(default_factory=dict)
    optional: dict[str, Any] = field(default_factory=dict)
    """Variables only some points of the study have, stored after the coordinates."""
    store_nonfinite: bool = True
    """Store the counts as the variable ``nonfinite`` (unless ``data`` holds it, which must then
    equal them); false for a study that stores per-network ``finite`` flags instead."""


@dataclass(frozen=True)
class BlockKernel:
    """A study's kernel for one shard: ``block(b)`` computes block ``b`` (on the device; the
    engine fetches its outputs to the host), and ``finish(outputs)`` turns the outputs of the
    shard's blocks, in block order, into the :class:`ShardResult`."""

    block: Callable[[int], Any]
    finish: Callable[[list[Any]], ShardResult]


BLOCK = Variable(("block",), "block index (keys derive from it)")
"""The ``block`` coordinate every raw file has (the studies' tables leave it to the engine)."""
NONFINITE = Variable(("block",), "networks in block with a non-finite number")


def simulate_shard(
    spec: PointSpec,
    shard: int,
    progress: Callable[[str], None] | None,
    prepare: Callable[[ShardTask], BlockKernel],
    variables: Mapping[str, Variable],
) -> xr.Dataset:
    """The raw dataset of shard ``shard`` (of ``params['shards']``) of ``spec``.  Switches JAX
    to float64 (nnfield.engine.precision): this is where a study's simulation starts."""
    enable_x64()
    p = spec.params
    blocks = shard_blocks(p["networks"] // p["block_size"], shard, p["shards"])
    if not blocks:
        raise ConfigError(
            f"point spec {spec.study}/{spec.name}: shard {shard} of {p['shards']} has no blocks "
            f"(networks {p['networks']} // block_size {p['block_size']} = "
            f"{p['networks'] // p['block_size']} blocks); give each shard at least one"
        )
    task = ShardTask(spec, blocks, point_key(spec.seed, spec.study, spec.name))
    kernel = prepare(task)
    outputs = run_with_progress(kernel.block, list(blocks), p["block_size"], progress, spec.name)
    result = kernel.finish(outputs)
    report_nonfinite(spec.name, _counts(spec, blocks, result), blocks, result.nonfinite_what)
    return raw_dataset(spec, blocks, result, variables)


def _counts(spec: PointSpec, blocks: range, result: ShardResult) -> np.ndarray:
    """The kernel's per-block non-finite counts, refused unless one per block."""
    nonfinite = np.asarray(result.nonfinite, dtype=np.int64)
    if nonfinite.shape != (len(blocks),):
        raise ValueError(f"study {spec.study}: {nonfinite.shape} non-finite counts for "
                         f"{len(blocks)} blocks")  # fmt: skip
    return nonfinite


def raw_dataset(
    spec: PointSpec, blocks: range, result: ShardResult, variables: Mapping[str, Variable]
) -> xr.Dataset:
    """The raw dataset of ``result`` (the blocks ``blocks`` of ``spec``): each variable with
    the dimensions and CF attributes of ``variables``, the provenance, then the study's
    attributes."""
    n_blocks = np.int64(spec.params["networks"] // spec.params["block_size"])
    attrs = dict(result.attrs)
    if attrs.setdefault("n_blocks", n_blocks) != n_blocks:
        raise ValueError(f"study {spec.study}: the kernel's n_blocks {attrs['n_blocks']} is not "
                         f"networks // block_size = {n_blocks}")  # fmt: skip
    nonfinite = _counts(spec, blocks, result)
    data = dict(result.data)
    if "nonfinite" in data:
        if not np.array_equal(np.asarray(data["nonfinite"]), nonfinite):
            raise ValueError(f"study {spec.study}: its variable nonfinite differs from the "
                             "non-finite counts it reports")  # fmt: skip
    elif result.store_nonfinite:
        data["nonfinite"] = nonfinite
    variables = {"block": BLOCK, "nonfinite": NONFINITE, **variables}
    coords = {"block": np.asarray(list(blocks), dtype=np.int64), **result.coords}
    ds = xr.Dataset(
        {name: _typed(spec.study, variables, name, value) for name, value in data.items()},
        coords={name: _typed(spec.study, variables, name, value) for name, value in coords.items()},
    )
    for name, value in result.optional.items():
        ds[name] = _typed(spec.study, variables, name, value)
    ds.attrs = provenance(spec.study, spec, backend_name())
    ds.attrs.update(attrs)
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
