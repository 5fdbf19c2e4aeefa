"""Simulate one shard of a depth point: per block and layer, sums over its networks of the
stochastic metric and its fluctuations (nnfield.studies.depth.sampler), in the raw layout of
nnfield.engine.simulate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnfield.config import PointSpec
from nnfield.engine.simulate import BlockKernel, ShardResult, ShardTask, Variable, simulate_shard

RAW_VARIABLES = (
    "count", "nonfinite", "g2", "g4", "z2", "z4", "logg", "logg2", "dead", "max_gg", "x",
)  # fmt: skip
"""Variables every shard and point file holds."""

_PAIRS, _QUADS, _INPUTS = ("block", "layer", "tuple2"), ("block", "layer", "tuple4"), (
    "block", "layer", "input")  # fmt: skip
VARIABLES = {
    "count": Variable(("block",), "networks in block"),
    "nonfinite": Variable(("block",), "networks in block with a NaN/inf statistic at some layer"),
    "g2": Variable(_PAIRS,
                   "sum over networks of the stochastic metric G^(l) over sorted input pairs"),
    "g4": Variable(_QUADS,
                   "sum over networks of the Wick sums of G^(l) (conditional 4-point function)"),
    "z2": Variable(_PAIRS, "sum over networks of the neuron-averaged z_a z_b"),
    "z4": Variable(_QUADS, "sum over networks of the neuron-averaged 4-fold products of z"),
    "logg": Variable(_INPUTS, "sum over networks of log G^(l)_aa"),
    "logg2": Variable(_INPUTS, "sum over networks of (log G^(l)_aa)^2"),
    "dead": Variable(_INPUTS, "networks with G^(l)_aa = 0 (all previous units off)"),
    "max_gg": Variable(_INPUTS, "largest single-network (G^(l)_aa)^2 in block"),
    "x": Variable(("input", "component"), "network input"),
    "layer": Variable(("layer",),
                      "layer l (number of weight matrices applied; z^(1) = b + W x)"),
    "width": Variable((), "hidden-layer width N"),
    "depth": Variable((), "network depth L (weight matrices)"),
    "family": Variable((), "activation family (config name)"),
}  # fmt: skip
"""The raw variables and coordinates: dimensions, long_name, units."""

FAMILY_ATTRS = ("activation", "cw", "cb", "input_dim")
"""Attributes of the prior, shared by the points of a family."""


def simulate(spec: PointSpec, shard: int = 0,
             progress: Callable[[str], None] | None = None):  # fmt: skip
    """Raw per-layer block sums for the blocks of ``shard``."""
    return simulate_shard(spec, shard, progress, _prepare, VARIABLES)


def _prepare(task: ShardTask) -> BlockKernel:
    from nnfield.studies.depth.sampler import DeepMLP, make_block_function, stack_layer_sums

    p = task.params
    mlp = DeepMLP(p["activation"], p["width"], p["depth"], p["cw"], p["cb"], p["dtype"])
    inputs = np.asarray(p["inputs"], dtype=np.float64)
    fn = make_block_function(mlp, inputs, p["block_size"])

    def finish(out: list) -> ShardResult:
        return _result(task, inputs, stack_layer_sums(out, p["block_size"]))

    return BlockKernel(lambda b: fn(task.key, b), finish)


def _result(task: ShardTask, inputs: np.ndarray, sums) -> ShardResult:
    p = task.params
    attrs = {k: p[k] for k in FAMILY_ATTRS}
    attrs.update(
        networks=np.int64(p["networks"]),
        block_size=np.int64(p["block_size"]),
        n_blocks=np.int64(p["networks"] // p["block_size"]),
        seed=np.int64(task.spec.seed),
        dtype=p["dtype"],
        layer_convention="l = 1..L counts weight matrices; W^(1) ~ N(0, C_W/d), "
        "W^(l>1) ~ N(0, C_W/N), b ~ N(0, C_b)",
    )
    return ShardResult(
        data={
            "count": sums.count,
            "nonfinite": sums.nonfinite,
            "g2": sums.g2,
            "g4": sums.g4,
            "z2": sums.z2,
            "z4": sums.z4,
            "logg": sums.logg,
            "logg2": sums.logg2,
            "dead": sums.dead.astype(np.int64),
            "max_gg": sums.max_gg,
            "x": inputs,
        },
        nonfinite=sums.nonfinite,
        nonfinite_what="layer statistics",
        attrs=attrs,
        coords={
            "layer": np.arange(1, p["depth"] + 1),
            "family": p["family"],
            "width": np.int64(p["width"]),
            "depth": np.int64(p["depth"]),
        },
    )
