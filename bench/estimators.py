"""Cost of a given precision on G4_conn: brute force against the conditional estimator, one run.

For each estimator the same blocks of networks are simulated (timed, median of interleaved
repeats) and the delete-one-block jackknife standard error of G4_conn is computed on every sorted
4-tuple.  The wall time needed to reach a target standard error s is t = (time per network) x
(networks needed) = t_net * (se_measured^2 * M) / s^2, so the ratio of the times two estimators
need for the same precision is

    [t_net * M * se^2]_brute / [t_net * M * se^2]_conditional,

evaluated per tuple (the median over tuples is printed, with the range).  Nothing here is an
absolute speed claim: both estimators run in the same process on the same machine.

Usage: python bench/estimators.py [--width 1000] [--arch erf] [--blocks 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from nnfield import stats
from nnfield import tuples as tup
from nnfield.ensemble import make_block_function
from nnfield.networks import SingleLayer

INPUTS = {
    "erf": [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0],
    "relu": [0.2, 0.4, 0.6, 0.8, 1.0, 1.2],
    "gauss": [-0.01, -0.006, -0.002, 0.002, 0.006, 0.01],
}


def run(fn, key, blocks, x):
    """Block sums for ``blocks`` and the wall time they took."""
    start = time.perf_counter()
    out = [jax.device_get(fn(key, b, x)) for b in blocks]
    return out, time.perf_counter() - start


def g4_conn_stderr(results, n_inputs: int) -> tuple[np.ndarray, int]:
    """Jackknife standard error of G4_conn on every 4-tuple, and the number of networks."""
    counts = np.array([r[0] for r in results], dtype=np.float64)
    sums = {
        "f2": np.stack([r[3] for r in results]),
        "f4": np.stack([r[4] for r in results]),
    }
    est = stats.jackknife(sums, counts, lambda m: tup.connected4(m["f4"], m["f2"], n_inputs))
    return est.stderr, int(counts.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--arch", default="erf", choices=sorted(INPUTS))
    parser.add_argument("--block-size", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    x_np = np.asarray(INPUTS[args.arch])[:, None]
    x = jnp.asarray(x_np)
    n_inputs = x_np.shape[0]
    net = SingleLayer(args.arch, args.width, 1, 1.0, 1.0, 1.0, 1.0)
    key = jax.random.key(0)
    fns = {e: make_block_function(net, n_inputs, args.block_size, e)
           for e in ("brute", "conditional")}  # fmt: skip
    for fn in fns.values():  # compile and warm up
        run(fn, key, [0], x)

    blocks = range(1, 1 + args.blocks)
    times: dict[str, list[float]] = {e: [] for e in fns}
    results = {}
    for _ in range(args.repeats):  # interleaved so machine noise hits both alike
        for name, fn in fns.items():
            results[name], t = run(fn, key, blocks, x)
            times[name].append(t)

    cost = {}
    print(
        f"G4_conn at N = {args.width}, arch {args.arch}, {n_inputs} inputs, "
        f"{args.blocks} blocks of {args.block_size} networks, median of {args.repeats}"
    )
    for name in fns:
        se, networks = g4_conn_stderr(results[name], n_inputs)
        t = statistics.median(times[name])
        per_network = t / networks
        cost[name] = per_network * networks * se**2  # seconds x (standard error)^2, per tuple
        print(f"  {name:12s} {networks / t:10,.0f} networks/s   median s.e. {np.median(se):.3e}"
              f"   time to s.e. 1e-4: {np.median(cost[name]) / 1e-8:10.3g} s")  # fmt: skip
    ratio = cost["brute"] / cost["conditional"]
    print(
        f"time to equal precision, brute / conditional: median {np.median(ratio):.4g} "
        f"(range over {ratio.size} tuples {ratio.min():.4g} .. {ratio.max():.4g})"
    )


if __name__ == "__main__":
    main()
