"""Simulate the toy study: per block, the sums over its networks of f and f^2 (the engine adds
the block coordinate, the per-block non-finite count `nonfinite` and `n_blocks`)."""

from __future__ import annotations

import numpy as np

from nnfield.engine.simulate import BlockKernel, ShardResult, ShardTask, Variable, simulate_shard

RAW_VARIABLES = ("count", "nonfinite", "sum_f", "sum_f2")
VARIABLES = {
    "count": Variable(("block",), "networks in block with a finite output"),
    "sum_f": Variable(("block",), "sum over networks of f(x)"),
    "sum_f2": Variable(("block",), "sum over networks of f(x)^2"),
}


def simulate(spec, shard=0, progress=None):
    return simulate_shard(spec, shard, progress, _prepare, VARIABLES)


def _prepare(task: ShardTask) -> BlockKernel:
    import jax
    import jax.numpy as jnp

    p = task.params
    x = jnp.asarray(p["input"], dtype=jnp.float64)
    size, d = p["block_size"], len(p["input"])

    @jax.jit
    def block(b):  # network j of block b: row j of a draw keyed by fold_in(point key, b)
        w = jax.random.normal(jax.random.fold_in(task.key, b), (size, d)) * p["scale"] / d**0.5
        f = w @ x
        ok = jnp.isfinite(f)
        f = jnp.where(ok, f, 0.0)
        return ok.sum(), (~ok).sum(), f.sum(), (f * f).sum()

    def finish(outputs) -> ShardResult:
        rows = np.asarray(outputs)
        data = {"count": rows[:, 0].astype(np.int64), "sum_f": rows[:, 2], "sum_f2": rows[:, 3]}
        return ShardResult(data=data, nonfinite=rows[:, 1].astype(np.int64),
                           nonfinite_what="outputs", attrs={})  # fmt: skip

    return BlockKernel(block, finish)
