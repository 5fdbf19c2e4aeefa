"""The toy study's sweep: checks, points and cost (no JAX)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnfield.config import ConfigError, PointSpec, check_blocks, number_name
from nnfield.studies.base import Cost

COUNT_PARAMETERS = ()


def check(cfg: Mapping[str, Any]) -> None:
    if not any(cfg["input"]):
        raise ConfigError("config key 'studies.toy.input': x = 0 gives f = 0 for every network")
    check_blocks(cfg["networks"], cfg["block_size"], cfg["shards"], "studies.toy.networks",
                 "studies.toy.block_size")  # fmt: skip


def expand(cfg: Mapping[str, Any]) -> list[PointSpec]:
    common = {k: int(cfg[k]) for k in ("networks", "block_size", "shards")}
    return [
        PointSpec("toy", f"scale~{number_name(float(s))}", int(cfg["seed"]),
                  {"scale": float(s), "input": [float(v) for v in cfg["input"]], **common})
        for s in cfg["scales"]
    ]  # fmt: skip


def cost(spec: PointSpec) -> Cost:
    d = len(spec.params["input"])
    return Cost(units=float(spec.params["networks"]) * d, seconds_per_unit=1e-8,
                setup_seconds=1.0, values_per_network=d)  # fmt: skip


def figures_for(cfg: Mapping[str, Any], figures: tuple[str, ...]) -> list[str]:
    return list(figures)
