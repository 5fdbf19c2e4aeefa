"""Per-point cost of simulate jobs: P tiny points as one batched process against P processes of
one point each, measured in the same run (both with an empty compilation cache).

The points are the issue-22 example: hidden-study points of 20 networks and 4 steps over a grid of
contractions x noises, whose simulation takes milliseconds, so the wall time per point is the
per-process start-up that batching removes.  The files of both runs are compared byte for byte.

Usage: python bench/batching.py [--points 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnfield import config


def tiny_points(count: int) -> list[config.PointSpec]:
    side = max(2, round(count**0.5))
    cfg = config.validate({"studies": {"hidden": {
        "seed": 1, "networks": 20, "block_size": 2, "steps": 4, "burn_in": 2, "time_blocks": 2,
        "ensembles": [{"name": "cycle", "weights": "cycle", "neurons": 8,
                       "contractions": [0.1 + 0.8 * i / side for i in range(side)],
                       "noises": [0.1 + i / side for i in range(side)]}]}}})  # fmt: skip
    return list(config.expand(cfg)["hidden"].values())[:count]


def simulate(specs, outs, env) -> float:
    args = []
    for spec, out in zip(specs, outs, strict=True):
        args += ["--spec", spec.to_json(), "--shard", "0", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nnfield", "-q", "simulate", *args], check=True,
                   env=env)  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    args = parser.parse_args()
    specs = tiny_points(args.points)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "NNFIELD_JAX_CACHE": ""}  # no persistent cache: both pay compiles
        batched = [root / f"batched-{i}.nc" for i in range(len(specs))]
        alone = [root / f"alone-{i}.nc" for i in range(len(specs))]
        wall_batch = simulate(specs, batched, env)
        wall_alone = sum(simulate([s], [o], env) for s, o in zip(specs, alone, strict=True))
        same = all(a.read_bytes() == b.read_bytes() for a, b in zip(alone, batched, strict=True))
    n = len(specs)
    print(
        f"{n} tiny hidden points: one process each {wall_alone:.1f} s "
        f"({wall_alone / n:.2f} s per point); one batched process {wall_batch:.1f} s "
        f"({wall_batch / n:.2f} s per point); ratio batched / one each = "
        f"{wall_batch / wall_alone:.3f}; files identical: {same}"
    )


if __name__ == "__main__":
    main()
