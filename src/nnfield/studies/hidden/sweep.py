"""The hidden study's sweep: cross-field checks of its config block, its points, their cost.

Import-light (no JAX): the Snakefile builds the DAG from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnfield.config import ConfigError, PointSpec, check_blocks, check_unique_names, number_name
from nnfield.studies.base import Cost

COUNT_PARAMETERS = ("neurons", "subsystems", "steps", "time_blocks")
"""Spec parameters that count something: positive integers."""
SETUP_SECONDS = 1.0
"""Per task: compilation (or a cache load) and set-up."""
SECONDS_PER_UNIT = 1e-8
"""Single-core seconds per unit of :func:`cost` (units: see there)."""


def cost(spec: PointSpec) -> Cost:
    """Per network: (burn-in + steps) x neurons^2; a network holds its weight matrix."""
    p = spec.params
    return Cost(
        units=float(p["networks"]) * (p["steps"] + p["burn_in"]) * p["neurons"] ** 2,
        seconds_per_unit=SECONDS_PER_UNIT,
        setup_seconds=SETUP_SECONDS,
        values_per_network=p["neurons"] ** 2,
    )


HIDDEN_ONLY = {"antisymmetric_fractions": ("ginibre",), "couplings": ("rings", "rings_product"),
               "coupling_matrix": ("rings", "rings_product"),
               "laziness": ("lazy_cycle",)}  # fmt: skip
"""Ensemble keys that apply to some weight kinds only."""


def check(cfg: Mapping[str, Any]) -> None:
    """Consistency checks of ``studies.hidden`` that JSON schema cannot express: subsystems,
    kind-specific keys, stability of
    the linear dynamics, the annealed mixture, time blocks and network blocks."""
    from nnfield.studies.hidden.weights import WeightEnsemble

    key = "studies.hidden"
    check_unique_names(cfg["ensembles"], f"{key}.ensembles")
    if cfg["steps"] % cfg["time_blocks"]:
        raise ConfigError(f"config key '{key}.time_blocks': {cfg['time_blocks']} does not divide "
                          f"steps = {cfg['steps']}")  # fmt: skip
    for i, ens in enumerate(cfg["ensembles"]):
        where = f"{key}.ensembles[{i}]"
        if ens["neurons"] % ens["subsystems"]:
            raise ConfigError(f"config key '{where}.subsystems': {ens['subsystems']} does not "
                              f"divide neurons = {ens['neurons']}")  # fmt: skip
        for name, kinds in HIDDEN_ONLY.items():
            if name in ens and ens["weights"] not in kinds:
                raise ConfigError(f"config key '{where}.{name}': only for weights "
                                  f"{' or '.join(kinds)}")  # fmt: skip
        if ens["light_cone"] and ens["bias"]:
            raise ConfigError(f"config key '{where}.light_cone': the space-time correlation is "
                              "the raw second moment; it needs bias 0")  # fmt: skip
        if ens["kick_response"] >= cfg["steps"]:
            raise ConfigError(f"config key '{where}.kick_response': {ens['kick_response']} must "
                              f"be below steps = {cfg['steps']}")  # fmt: skip
        lags, burn = ens["light_cone"], cfg["burn_in"]
        if lags > burn:
            raise ConfigError(f"config key '{where}.light_cone': {lags} lags need burn_in >= "
                              f"{lags} (it is {burn})")  # fmt: skip
        matrix = ens.get("coupling_matrix", "symmetric")
        d = ens["subsystems"]
        if not isinstance(matrix, str) and (len(matrix) != d or any(len(r) != d for r in matrix)):
            raise ConfigError(f"config key '{where}.coupling_matrix': an explicit C must be "
                              f"{d} x {d} (subsystems = {d} rings), one row per ring")  # fmt: skip
        ringed = ens["weights"] in ("rings", "rings_product")
        if ringed and ens["subsystems"] < 2 and any(ens.get("couplings", [])):
            raise ConfigError(f"config key '{where}.subsystems': coupled rings need at least 2 "
                              "rings (subsystems)")  # fmt: skip
        if cfg["block_size"] % ens["initial_states"]:
            raise ConfigError(f"config key '{where}.initial_states': {ens['initial_states']} "
                              f"does not divide block_size = {cfg['block_size']} (replicas of "
                              "one weight draw share a block)")  # fmt: skip
        if ens["weights"] == "mixture":
            if ens["initial_states"] > 1:
                raise ConfigError(f"config key '{where}.initial_states': the P/P^T mixture "
                                  "alternates members network by network; use 1")  # fmt: skip
            if ens["activation"] != "linear" or ens["bias"]:
                raise ConfigError(f"config key '{where}.activation': the annealed P/P^T "
                                  "mixture needs activation linear and bias 0 (its component "
                                  "densities are then exact)")  # fmt: skip
            if cfg["block_size"] % 2:
                raise ConfigError(f"config key '{key}.block_size': must be even for the 50/50 "
                                  f"mixture of {where}")  # fmt: skip
        if ens["activation"] != "linear":
            continue
        for j, gain in enumerate(ens["gains"]):
            for a in ens["contractions"]:
                for eps in ens.get("couplings", [0.0]):
                    radius = WeightEnsemble(
                        ens["weights"],
                        ens["neurons"],
                        ens["subsystems"],
                        a,
                        coupling=eps,
                        coupling_matrix=ens.get("coupling_matrix", "symmetric"),
                    ).spectral_radius()  # fmt: skip (lazy_cycle: a for every e)
                    if not gain * radius < 1:
                        raise ConfigError(
                            f"config key '{where}.gains[{j}]': g = {gain} times the spectral "
                            f"radius {radius:g} of W (a = {a}, eps = {eps}) must be < 1, or "
                            "the linear dynamics diverges"
                        )
    check_blocks(cfg["networks"], cfg["block_size"], cfg["shards"], f"{key}.networks",
                  f"{key}.block_size")  # fmt: skip


def expand(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the hidden study: ensemble x contraction x (antisymmetric fraction, ginibre)
    x (coupling, rings) x (laziness, lazy_cycle) x gain x noise."""
    points = []
    common = {k: int(cfg[k]) for k in ("networks", "block_size", "shards", "steps", "burn_in",
                                        "time_blocks")}  # fmt: skip
    for ens in cfg["ensembles"]:
        kind = ens["weights"]
        fractions = ens.get("antisymmetric_fractions", [0.5]) if kind == "ginibre" else [None]
        couplings = ens.get("couplings", [0.0]) if kind in ("rings", "rings_product") else [None]
        lazies = ens.get("laziness", [0.5]) if kind == "lazy_cycle" else [None]
        for a in ens["contractions"]:
            for k in fractions:
                for eps, e in ((c, z) for c in couplings for z in lazies):
                    for gain in ens["gains"]:
                        for noise in ens["noises"]:
                            params = {
                                "ensemble": ens["name"], "weights": kind,
                                "neurons": int(ens["neurons"]),
                                "subsystems": int(ens["subsystems"]),
                                "contraction": float(a),
                                "antisymmetric_fraction": 0.5 if k is None else float(k),
                                "coupling": 0.0 if eps is None else float(eps),
                                "coupling_matrix": ens.get("coupling_matrix", "symmetric"),
                                "activation": ens["activation"], "gain": float(gain),
                                "noise": float(noise), "bias": float(ens["bias"]),
                                "dtype": cfg["dtype"], **common,
                            }  # fmt: skip
                            if ens["initial_states"] > 1:  # absent at 1: earlier specs keep
                                params["initial_states"] = int(ens["initial_states"])  # hashes
                            if e is not None:  # absent unless used, as initial_states
                                params["laziness"] = float(e)
                            if ens["light_cone"]:
                                params["light_cone"] = int(ens["light_cone"])
                            if ens["kick_response"]:
                                params["kick_response"] = int(ens["kick_response"])
                            name = (
                                f"ensemble~{ens['name']}/a~{number_name(float(a))}/"
                                + ("" if k is None else f"k~{number_name(float(k))}/")
                                + ("" if eps is None else f"eps~{number_name(float(eps))}/")
                                + ("" if e is None else f"e~{number_name(float(e))}/")
                                + f"g~{number_name(float(gain))}/s~{number_name(float(noise))}"
                            )
                            points.append(PointSpec("hidden", name, int(cfg["seed"]), params))
    return points


def figures_for(cfg: Mapping[str, Any], figures: tuple[str, ...]) -> list[str]:
    """Every one of its figures, whatever the config."""
    return list(figures)
