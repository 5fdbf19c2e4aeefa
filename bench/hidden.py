"""Cost of the hidden-study kernel and of a simulate job, each against a baseline in one run.

1. Kernel: the full block function (dynamics, medium and system entropy, subsystem sums) against
   the bare dynamics x' = f(W x + b) + s xi with the same noise draws, batched matvecs and loop
   structure.  The ratio kernel / bare is what the observables cost.  Medians of interleaved
   repeats.
2. Job: ``nnfield simulate`` of one default-config point in a fresh process with an empty
   persistent compilation cache against the same with the cache filled by the first run (wall
   seconds of the whole process, so imports and writing count).

Usage: python bench/hidden.py [--neurons 16] [--block-size 50] [--steps 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import nnfield
from nnfield import config
from nnfield.studies.hidden.dynamics import make_block_function, no_components
from nnfield.studies.hidden.weights import WeightEnsemble, subsystem_matrix


def bare_dynamics(neurons: int, block_size: int, steps: int):
    """Only x' = g (W x + b) + s xi, with the kernel's noise keys and loop."""

    @jax.jit
    def run(key, block, weights, bias, gain, noise):
        key = jax.random.fold_in(key, block)
        w, b = weights.astype(jnp.float32), bias.astype(jnp.float32)

        def step(t, x):
            xi = jax.random.normal(jax.random.fold_in(key, t), (block_size, neurons), jnp.float32)
            return gain * (jnp.einsum("mij,mj->mi", w, x) + b) + noise * xi

        return jax.lax.fori_loop(0, steps, step, jnp.zeros((block_size, neurons), jnp.float32))

    return run


def kernel_ratio(args) -> None:
    n, m, steps = args.neurons, args.block_size, args.steps
    ens = WeightEnsemble("ginibre", n, 4, 0.8)
    weights = ens.sample(np.random.default_rng(0), m)
    bias = np.zeros((m, n))
    averaging = subsystem_matrix(n, 4)
    key = jax.random.key(0)
    full = make_block_function(n, 4, m, 20, steps // 20, 0, "linear")
    bare = bare_dynamics(n, m, steps)
    density = (np.zeros((m, n)), np.broadcast_to(np.eye(n), (m, n, n)).copy(), np.zeros(m))
    calls = {
        "kernel": lambda: full(key, 0, weights, bias, 1.0, 0.1, averaging, density,
                               no_components(n)),
        "bare": lambda: bare(key, 0, weights, bias, 1.0, 0.1),
    }  # fmt: skip
    for call in calls.values():
        jax.block_until_ready(call())  # compile
    times = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[name].append(time.perf_counter() - start)
    kernel, base = statistics.median(times["kernel"]), statistics.median(times["bare"])
    rate = m * steps / kernel
    print(f"kernel: {n} neurons, {m} networks x {steps} steps: {kernel * 1e3:.1f} ms "
          f"({rate:,.0f} network-steps/s); bare dynamics {base * 1e3:.1f} ms; "
          f"ratio kernel / bare = {kernel / base:.2f}")  # fmt: skip


def job_ratio(args) -> None:
    cfg = config.load()
    spec = next(iter(config.expand(cfg)["hidden"].values()))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NNFIELD_JAX_CACHE": os.path.join(tmp, "cache")}
        cmd = [sys.executable, "-m", "nnfield", "simulate", "--spec", spec.to_json(),
               "--shard", "0", "--out", os.path.join(tmp, "shard.nc")]  # fmt: skip
        walls = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            walls.append(time.perf_counter() - start)
    print(f"simulate job {spec.name}: cold cache {walls[0]:.2f} s, warm cache {walls[1]:.2f} s, "
          f"ratio warm / cold = {walls[1] / walls[0]:.2f}")  # fmt: skip


def main() -> None:
    nnfield.enable_x64()  # an entry point: the samplers are built directly
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kernel_ratio(args)
    job_ratio(args)


if __name__ == "__main__":
    main()
