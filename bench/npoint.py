"""Throughput of the brute-force npoint kernel against its roofline, measured in one run.

Brute force must draw N (d + 2) + 1 standard normals per network, so the cheapest conceivable
implementation is one that only draws them.  The roofline here draws exactly as many normals in
the same chunks (and sums each chunk so that nothing is optimised away); the ratio
kernel_time / roofline_time says how close the kernel is to it.  Timings are medians of repeats,
interleaved so that machine noise affects both alike.

Usage: python bench/npoint.py [--width 1000] [--blocks 10] [--arch relu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import nnfield
from nnfield.studies.npoint.networks import SingleLayer
from nnfield.studies.npoint.sampler import chunk_size, make_block_function

INPUTS = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])[:, None]


def roofline_function(n_params: int, chunk: int, n_chunks: int):
    """Draw n_chunks x chunk x n_params float32 normals (one key per network, as the kernel)."""

    @jax.jit
    def draw(key, block):
        block_key = jax.random.fold_in(key, block)

        def body(c, acc):
            index = c * chunk + jnp.arange(chunk)
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(block_key, index)
            z = jax.vmap(lambda k: jax.random.normal(k, (n_params,), jnp.float32))(keys)
            return acc + z.sum(dtype=jnp.float32)

        return jax.lax.fori_loop(0, n_chunks, body, jnp.float32(0))

    return draw


def timed(fn, key, blocks) -> float:
    start = time.perf_counter()
    for b in blocks:
        jax.block_until_ready(fn(key, b))
    return time.perf_counter() - start


def main() -> None:
    nnfield.enable_x64()  # an entry point: the samplers are built directly
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--arch", default="relu", choices=["relu", "erf", "gauss"])
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    net = SingleLayer(args.arch, args.width, 1, 1.0, 1.0, 1.0, 1.0)
    n_inputs = INPUTS.shape[0]
    x = jnp.asarray(INPUTS)
    kernel = make_block_function(net, n_inputs, args.block_size)
    chunk = chunk_size(args.block_size, args.width, n_inputs, 1)
    draw = roofline_function(net.n_params, chunk, args.block_size // chunk)
    key = jax.random.key(0)

    def kernel_call(k, b):
        return kernel(k, b, x)

    for fn in (kernel_call, draw):  # compile and warm up
        timed(fn, key, [0])
    blocks = range(1, 1 + args.blocks)
    t_kernel, t_roof = [], []
    for _ in range(args.repeats):
        t_kernel.append(timed(kernel_call, key, blocks))
        t_roof.append(timed(draw, key, blocks))
    tk, tr = statistics.median(t_kernel), statistics.median(t_roof)
    networks = args.blocks * args.block_size
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), jax {jax.__version__}")
    print(f"arch {args.arch}, N = {args.width}, {n_inputs} inputs, d = 1, chunk {chunk}, "
          f"{networks} networks x {args.repeats} repeats (medians)")  # fmt: skip
    print(f"brute-force kernel : {networks / tk:12,.0f} networks/s  "
          f"{networks * args.width * n_inputs / tk:14,.0f} hidden-unit evaluations/s")  # fmt: skip
    print(f"roofline (normals) : {networks / tr:12,.0f} networks/s  "
          f"{networks * net.n_params / tr:14,.0f} normals/s")  # fmt: skip
    print(f"ratio kernel time / roofline time: {tk / tr:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
