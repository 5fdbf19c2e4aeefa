"""Simulate the toy study: per block, the sums over its networks of f and f^2."""

from __future__ import annotations

import numpy as np

from nnfield.engine.simulate import ShardResult, ShardTask, Variable, simulate_shard

RAW_VARIABLES = ("count", "nonfinite", "sum_f", "sum_f2")
VARIABLES = {
    "count": Variable(("block",), "networks in block"),
    "nonfinite": Variable(("block",), "networks in block with a non-finite output"),
    "sum_f": Variable(("block",), "sum over networks of f(x)"),
    "sum_f2": Variable(("block",), "sum over networks of f(x)^2"),
    "block": Variable(("block",), "block index (keys derive from it)"),
}


def simulate(spec, shard=0, progress=None):
    return simulate_shard(spec, shard, progress, _kernel, VARIABLES)


def _kernel(task: ShardTask) -> ShardResult:
    import jax
    import jax.numpy as jnp

    from nnfield.engine.progress import run_with_progress

    p = task.params
    x = jnp.asarray(p["input"], dtype=jnp.float64)
    size, d = p["block_size"], len(p["input"])

    @jax.jit
    def block(b):
        w = jax.random.normal(jax.random.fold_in(task.key, b), (size, d)) * p["scale"] / d**0.5
        f = w @ x
        ok = jnp.isfinite(f)
        f = jnp.where(ok, f, 0.0)
        return ok.sum(), (~ok).sum(), f.sum(), (f * f).sum()

    rows = np.asarray(run_with_progress(block, list(task.blocks), size, task.progress,
                                        task.spec.name))  # fmt: skip
    data = {"count": rows[:, 0].astype(np.int64), "nonfinite": rows[:, 1].astype(np.int64),
            "sum_f": rows[:, 2], "sum_f2": rows[:, 3]}  # fmt: skip
    return ShardResult(data=data, nonfinite=data["nonfinite"], nonfinite_what="outputs",
                       attrs={"n_blocks": np.int64(p["networks"] // size)})  # fmt: skip
