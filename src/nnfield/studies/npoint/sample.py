"""Simulate one shard of an npoint point: per block, float64 sums over its networks of the
outputs' products over sorted input tuples (nnfield.studies.npoint.sampler), in the raw layout
of nnfield.engine.simulate."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nnfield import tuples as tup
from nnfield.config import PointSpec
from nnfield.engine import simulate as engine
from nnfield.engine.simulate import BlockKernel, ShardResult, ShardTask, Variable, simulate_shard

RAW_VARIABLES = (
    "count", "nonfinite", "sum_f", "sum_f2", "sum_f4", "sum_f6", "max_f4", "max_f6", "x",
    "sum_density", "density_edges", "density_scale",
)  # fmt: skip
"""Variables every shard and point file holds."""

VARIABLES = {
    "count": Variable(("block",), "networks with finite outputs in block"),
    "nonfinite": Variable(("block",), "networks dropped for non-finite outputs in block"),
    "sum_f": Variable(("block", "input"),
                      "sum over networks of f(x_a) (0 for the conditional estimator)"),
    "sum_f2": Variable(("block", "tuple2"),
                       "sum over networks of f(x_a) f(x_b), sorted 2-tuples"),
    "sum_f4": Variable(("block", "tuple4"),
                       "sum over networks of 4-fold products of f, sorted 4-tuples"),
    "sum_f6": Variable(("block", "tuple6"),
                       "sum over networks of 6-fold products of f, sorted 6-tuples"),
    "max_f4": Variable(("block",), "largest single-network mean over inputs of f(x_a)^4 in block"),
    "max_f6": Variable(("block",), "largest single-network mean over inputs of f(x_a)^6 in block"),
    "x": Variable(("input", "component"), "network input"),
    "sum_density": Variable(("block", "input", "density_bin"),
                            "sum over networks of the indicator (conditional estimator: the "
                            "conditional probability) of f(x_a) / density_scale in each bin"),
    "density_edges": Variable(("density_edge",),
                              "interior edges of the density bins in units of density_scale "
                              "(plus the two tails)"),
    "density_scale": Variable(("input",), "bin unit: sqrt(K(x_a, x_a)) of the exact GP kernel"),
    "width": Variable((), "hidden-layer width N"),
    "family": Variable((), "architecture family (config name)"),
    **{f"tuple{k}_inputs": Variable((f"tuple{k}", f"slot{k}"),
                                    f"input indices of each sorted {k}-tuple (colex order)")
       for k in (2, 4, 6)},
}  # fmt: skip
"""The raw variables and coordinates: dimensions, long_name, units."""

FAMILY_ATTRS = (
    "arch", "sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1", "input_dim", "readout_scale_shape",
)  # fmt: skip
"""Attributes of the prior, shared by the points of a family (``readout_scale_shape`` only where
the readout has a shared scale, so files of independent-readout families are unchanged)."""


def tuple_arrays(n_inputs: int) -> dict[str, np.ndarray]:
    """Input indices of the sorted k-tuples (colex order) for ``n_inputs`` inputs, k = 2, 4, 6."""
    return {f"tuple{k}_inputs": tup.sorted_tuples(n_inputs, k).astype(np.int32) for k in (2, 4, 6)}


def simulate(spec: PointSpec, shard: int = 0,
             progress: Callable[[str], None] | None = None):  # fmt: skip
    """Raw block sums for the blocks of ``shard`` (of ``params['shards']``)."""
    return simulate_shard(spec, shard, progress, _prepare, VARIABLES)


def _prepare(task: ShardTask) -> BlockKernel:
    import jax.numpy as jnp

    from nnfield.studies.npoint.networks import SingleLayer
    from nnfield.studies.npoint.sampler import (
        density_scale_for,
        make_block_function,
        stack_block_sums,
    )

    p = task.params
    inputs = np.asarray(p["inputs"], dtype=np.float64)
    net = SingleLayer(
        p["arch"], p["width"], p["input_dim"],
        p["sigma_w0"], p["sigma_b0"], p["sigma_w1"], p["sigma_b1"], p["dtype"],
        p.get("readout_scale_shape"),
    )  # fmt: skip
    scale = density_scale_for(net, inputs)
    fn = make_block_function(net, inputs.shape[0], p["block_size"], p["estimator"], scale)
    x = jnp.asarray(inputs)

    def finish(outputs: list) -> ShardResult:
        return _result(task.spec, inputs, stack_block_sums(outputs), scale)

    return BlockKernel(lambda b: fn(task.key, b, x), finish)


def _result(spec: PointSpec, inputs: np.ndarray, sums, density_scale: np.ndarray) -> ShardResult:
    from nnfield.studies.npoint.sampler import DENSITY_EDGES

    p = spec.params
    data = {
        "count": np.asarray(sums.count, dtype=np.int64),
        "nonfinite": np.asarray(sums.nonfinite, dtype=np.int64),
        "sum_f": np.asarray(sums.f1, dtype=np.float64),
        "sum_f2": np.asarray(sums.f2, dtype=np.float64),
        "sum_f4": np.asarray(sums.f4, dtype=np.float64),
        "sum_f6": np.asarray(sums.f6, dtype=np.float64),
        "max_f4": np.asarray(sums.max4, dtype=np.float64),
        "max_f6": np.asarray(sums.max6, dtype=np.float64),
        "x": inputs,
        "sum_density": np.asarray(sums.hist, dtype=np.float64),
        "density_edges": DENSITY_EDGES,
        "density_scale": np.asarray(density_scale, dtype=np.float64),
        **tuple_arrays(inputs.shape[0]),
    }
    attrs = {k: p[k] for k in FAMILY_ATTRS if k in p}
    attrs.update(
        networks=np.int64(p["networks"]),
        block_size=np.int64(p["block_size"]),
        n_blocks=np.int64(p["networks"] // p["block_size"]),
        seed=np.int64(spec.seed),
        dtype=p["dtype"],
        estimator=p["estimator"],
        weights_convention=weights_convention(p),
    )
    return ShardResult(
        data=data,
        nonfinite=data["nonfinite"],
        nonfinite_what="outputs (dropped from the sums)",
        attrs=attrs,
        coords={"family": p["family"], "width": np.int64(p["width"])},
    )


def weights_convention(p) -> str:
    """The prior of the point's parameters, in words (stored as an attribute)."""
    from nnfield.activations import REGISTRY

    bias = "b0 ~ U(-pi, pi)" if REGISTRY[p["arch"]].uniform_phase else "b0 ~ N(0, sigma_b0^2)"
    readout = "W1 ~ N(0, sigma_w1^2/N)"
    if p.get("readout_scale_shape") is not None:
        readout = ("W1_i = s g_i, g_i ~ N(0, sigma_w1^2/N), one s per network with "
                   "s^2 ~ Gamma(readout_scale_shape, scale 1/readout_scale_shape)")  # fmt: skip
    return f"W0 ~ N(0, sigma_w0^2/d), {bias}, {readout}, b1 ~ N(0, sigma_b1^2)"


def raw_dataset(spec: PointSpec, blocks: Sequence[int], inputs: np.ndarray, sums):
    """The raw dataset of given block sums (``sums`` as nnfield.studies.npoint.sampler's
    BlockSums) of the blocks ``blocks``: for tests that build points without simulating."""
    from nnfield.studies.npoint.networks import SingleLayer
    from nnfield.studies.npoint.sampler import density_scale_for

    p = spec.params
    net = SingleLayer(
        p["arch"], p["width"], p["input_dim"], p["sigma_w0"], p["sigma_b0"],
        p["sigma_w1"], p["sigma_b1"], p["dtype"], p.get("readout_scale_shape"),
    )  # fmt: skip
    scale = density_scale_for(net, inputs)
    return engine.raw_dataset(spec, blocks, _result(spec, inputs, sums, scale), VARIABLES)
