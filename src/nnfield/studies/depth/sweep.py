"""The depth study's sweep: cross-field checks of its config block, its points, their cost.

Import-light (no JAX): the Snakefile builds the DAG from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnfield.config import (
    ConfigError,
    PointSpec,
    check_blocks,
    check_input_lengths,
    check_unique_names,
)
from nnfield.studies.base import Cost

COUNT_PARAMETERS = ("width", "depth", "input_dim")
"""Spec parameters that count something: positive integers."""
SETUP_SECONDS = 3.0
"""Per task: compilation (or a cache load) and set-up."""
SECONDS_PER_UNIT = 5e-10
"""Single-core seconds per unit of :func:`cost` (units: see there)."""


def cost(spec: PointSpec) -> Cost:
    """Per network: width^2 x depth x n (n inputs); a network holds 4 x width x n values."""
    p = spec.params
    return Cost(
        units=float(p["networks"]) * p["width"] ** 2 * p["depth"] * len(p["inputs"]),
        seconds_per_unit=SECONDS_PER_UNIT,
        setup_seconds=SETUP_SECONDS,
        values_per_network=4 * p["width"] * len(p["inputs"]),
    )


def check(depth: Mapping[str, Any]) -> None:
    """Consistency checks of ``studies.depth`` that JSON schema cannot express."""
    from nnfield.studies.depth.theory import CRITICAL_POINTS

    key = "studies.depth"
    check_unique_names(depth["families"], f"{key}.families")
    for i, fam in enumerate(depth["families"]):
        where = f"{key}.families[{i}]"
        check_input_lengths(fam, where)
        if fam["activation"] not in CRITICAL_POINTS and not ("cw" in fam and "cb" in fam):
            raise ConfigError(
                f"config key '{where}.cw': {fam['activation']} has no tabulated critical point; "
                "give cw and cb"
            )
    check_blocks(depth["networks"], depth["block_size"], depth["shards"], f"{key}.networks",
                  f"{key}.block_size")  # fmt: skip


def expand(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the depth study: every family at every width and depth."""
    from nnfield.studies.depth.theory import critical_point

    points = []
    for fam in cfg["families"]:
        inputs = [
            [float(x)] if isinstance(x, int | float) else [float(v) for v in x]
            for x in fam["inputs"]
        ]
        if "cw" in fam and "cb" in fam:
            cb, cw = float(fam["cb"]), float(fam["cw"])
        else:
            crit_cb, crit_cw = critical_point(fam["activation"])
            cb, cw = float(fam.get("cb", crit_cb)), float(fam.get("cw", crit_cw))
        for width in fam["widths"]:
            for depth in fam["depths"]:
                params = {
                    "family": fam["name"],
                    "activation": fam["activation"],
                    "cw": cw,
                    "cb": cb,
                    "width": int(width),
                    "depth": int(depth),
                    "input_dim": int(fam.get("input_dim", 1)),
                    "inputs": inputs,
                    "networks": int(cfg["networks"]),
                    "block_size": int(cfg["block_size"]),
                    "shards": int(cfg["shards"]),
                    "dtype": cfg["dtype"],
                }
                name = f"family~{fam['name']}/width~{width}/depth~{depth}"
                points.append(PointSpec("depth", name, int(cfg["seed"]), params))
    return points


def figures_for(cfg: Mapping[str, Any], figures: tuple[str, ...]) -> list[str]:
    """Every one of its figures, whatever the config."""
    return list(figures)
