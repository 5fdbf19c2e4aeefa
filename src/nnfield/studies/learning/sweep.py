"""The learning study's sweep: cross-field checks of its config block, its points, their cost.

Import-light (no JAX): the Snakefile builds the DAG from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nnfield.config import ConfigError, PointSpec, check_blocks, check_unique_names, number_name
from nnfield.studies.base import Cost

COUNT_PARAMETERS = ("steps", "record_every", "width", "train_size", "input_dim")
"""Spec parameters that count something: positive integers."""
SETUP_SECONDS = 3.0
"""Per task: compilation (or a cache load) and set-up."""
SECONDS_PER_UNIT = {"quadratic": 5e-8, "teacher_student": 7e-9}
"""Single-core seconds per unit of :func:`cost`: quadratic and barrier problems, and
teacher-student problems, which have their own unit."""


def cost(spec: PointSpec) -> Cost:
    """Per network: steps x dim^2 for the quadratic and barrier problems (a network holds
    dim^2 values), steps x train size x width x (input dim + depth x width) for teacher-student
    (a network holds its parameters and activations)."""
    p = spec.params
    networks, steps = float(p["networks"]), p["steps"]
    if p["kind"] == "teacher_student":
        w = p["width"]
        per = p["train_size"] * w * (p["input_dim"] + p["depth"] * w)
        return Cost(
            units=networks * steps * per,
            seconds_per_unit=SECONDS_PER_UNIT["teacher_student"],
            setup_seconds=SETUP_SECONDS,
            values_per_network=w * (p["input_dim"] + p["depth"] * w)
            + p["train_size"] * w * (p["depth"] + 1),
        )
    dim = len(p["hessian_eigenvalues"])
    return Cost(
        units=networks * steps * dim**2,
        seconds_per_unit=SECONDS_PER_UNIT["quadratic"],
        setup_seconds=SETUP_SECONDS,
        values_per_network=dim**2,
    )


def optimizers(prob: Mapping[str, Any]) -> list[str]:
    """The optimizers of a learning problem (one name or a list in the config)."""
    opt = prob["optimizer"]
    return [opt] if isinstance(opt, str) else list(opt)


def check(cfg: Mapping[str, Any]) -> None:
    """Consistency checks of ``studies.learning`` that JSON schema cannot express (stability,
    noise, batches, block count)."""
    key = "studies.learning"
    check_unique_names(cfg["problems"], f"{key}.problems")
    if cfg["samples"] > cfg["block_size"]:
        raise ConfigError(f"config key '{key}.samples': {cfg['samples']} sampled networks per "
                          f"block exceed block_size {cfg['block_size']}")  # fmt: skip
    for i, prob in enumerate(cfg["problems"]):
        where = f"{key}.problems[{i}]"
        if prob["steps"] % prob["record_every"]:
            raise ConfigError(
                f"config key '{where}.record_every': {prob['record_every']} does not divide "
                f"steps = {prob['steps']}"
            )
        if prob["kind"] == "teacher_student":
            _check_teacher_student(prob, where)
            continue
        if prob["kind"] == "barrier":
            _check_barrier(prob, where)
        else:
            for name in ("barrier", "barrier_width"):
                if name in prob:
                    raise ConfigError(f"config key '{where}.{name}': only for kind barrier")
            if "momentum" in optimizers(prob):
                raise ConfigError(f"config key '{where}.optimizer': momentum is for "
                                  "teacher_student and barrier problems")  # fmt: skip
        top = max(prob["hessian_eigenvalues"])
        for j, lr in enumerate(prob["learning_rates"]):
            if prob["kind"] != "barrier" and not lr * top < 2:  # barrier: _check_barrier
                raise ConfigError(
                    f"config key '{where}.learning_rates[{j}]': eta = {lr} times the largest "
                    f"Hessian eigenvalue {top} must be < 2, or gradient descent diverges"
                )
        dim = len(prob["hessian_eigenvalues"])
        if "sgd" in optimizers(prob) and len(prob.get("noise_eigenvalues", [])) != dim:
            raise ConfigError(
                f"config key '{where}.noise_eigenvalues': sgd needs one per dimension ({dim})"
            )
        if optimizers(prob) == ["sgld"] and prob.get("noise_eigenvalues"):
            raise ConfigError(f"config key '{where}.noise_eigenvalues': only for optimizer sgd")
        if prob.get("data_disorder") and (prob["kind"] != "quadratic"
                                          or optimizers(prob) != ["sgld"]):  # fmt: skip
            raise ConfigError(f"config key '{where}.data_disorder': for quadratic sgld problems")
        if "gibbs" in prob["initial"] and optimizers(prob) != ["sgld"]:
            raise ConfigError(f"config key '{where}.initial': gibbs needs a temperature "
                              "(optimizer sgld)")  # fmt: skip
        if cfg["networks"] <= dim + 1:
            raise ConfigError(
                f"config key '{key}.networks': the entropy estimator needs more networks than "
                f"parameters ({dim})"
            )
    check_blocks(cfg["networks"], cfg["block_size"], cfg["shards"], f"{key}.networks",
                  f"{key}.block_size")  # fmt: skip


def _check_barrier(prob: Mapping[str, Any], where: str) -> None:
    """One or two coordinates, SGLD at T > 0 (the grid chain), a stable step, Gaussian starts."""
    dim = len(prob["hessian_eigenvalues"])
    if dim > 2:
        raise ConfigError(
            f"config key '{where}.hessian_eigenvalues': barrier problems have one or two "
            f"coordinates (the exact density lives on a grid), got {dim}"
        )
    if not set(optimizers(prob)) <= {"sgld", "momentum"}:
        raise ConfigError(f"config key '{where}.optimizer': barrier problems are trained by "
                          "sgld or momentum")  # fmt: skip
    if "momentum" in optimizers(prob) and dim != 1:
        raise ConfigError(
            f"config key '{where}.optimizer': momentum on a barrier problem is one-dimensional "
            f"(its exact density lives on the 2-D (q, p) grid), got {dim} coordinates"
        )
    if "gibbs" in prob["initial"]:
        raise ConfigError(f"config key '{where}.initial': barrier problems start narrow or broad")
    for j, temp in enumerate(prob["temperatures"]):
        if not temp > 0:
            raise ConfigError(f"config key '{where}.temperatures[{j}]': must be > 0")
    # the bound of nnfield.studies.learning.potential.BarrierPotential.max_curvature (no JAX
    # import here)
    top = max(prob["hessian_eigenvalues"]) + 2 * math.exp(-1.5) * prob["barrier"] / (
        prob["barrier_width"] ** 2
    )
    beta = float(prob.get("momentum", 0.9))
    for opt in optimizers(prob):
        # SGLD: eta max U'' < 2; BAOAB with h^2 = 2 eta / (1 + beta): h^2 max U'' < 4
        bound = 2 * (1 + beta) if opt == "momentum" else 2
        for j, lr in enumerate(prob["learning_rates"]):
            if not lr * top < bound:
                raise ConfigError(
                    f"config key '{where}.learning_rates[{j}]': eta = {lr} times the largest "
                    f"curvature of the loss ({top:.3g}) must be < {bound:g} ({opt})"
                )


def _check_teacher_student(prob: Mapping[str, Any], where: str) -> None:
    """Temperatures > 0 (the medium entropy is heat / T), batches that divide the data."""
    if "gibbs" in prob["initial"]:
        raise ConfigError(f"config key '{where}.initial': gibbs is for quadratic problems "
                          "(teacher-student: narrow or broad)")  # fmt: skip
    for j, temp in enumerate(prob["temperatures"]):
        if not temp > 0:
            raise ConfigError(
                f"config key '{where}.temperatures[{j}]': must be > 0 (the medium entropy is "
                "heat / T; give plain SGD a small temperature)"
            )
    for j, size in enumerate(prob.get("batch_sizes", [])):
        if prob["train_size"] % size:
            raise ConfigError(f"config key '{where}.batch_sizes[{j}]': {size} does not divide "
                              f"train_size {prob['train_size']}")  # fmt: skip
    if prob.get("batch_sizes") and "sgd" not in optimizers(prob):
        raise ConfigError(f"config key '{where}.batch_sizes': minibatches are for optimizer sgd")
    for name in ("hessian_eigenvalues", "noise_eigenvalues", "barrier", "barrier_width",
                 "data_disorder"):  # fmt: skip
        if name in prob:
            raise ConfigError(f"config key '{where}.{name}': not for kind teacher_student")


def expand(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the learning study: problem x (architecture) x optimizer x (batch size) x
    learning rate x temperature x initial ensemble."""
    points = []
    common = {k: int(cfg[k]) for k in ("networks", "block_size", "shards", "samples")}
    for prob in cfg["problems"]:
        for opt, arch, arch_name in _learning_variants(prob):
            temperatures = [0.0] if prob["kind"] == "quadratic" and opt == "sgd" else (
                prob["temperatures"])  # fmt: skip
            for lr in prob["learning_rates"]:
                for temp in temperatures:
                    for initial in prob["initial"]:
                        params = {
                            "problem": prob["name"], "kind": prob["kind"], "optimizer": opt,
                            **arch, "learning_rate": float(lr), "temperature": float(temp),
                            "initial": initial, "steps": int(prob["steps"]),
                            "record_every": int(prob["record_every"]), **common,
                        }  # fmt: skip
                        if prob["kind"] == "barrier":  # k-NN entropies use every network
                            params["samples"] = params["block_size"]
                        name = (f"problem~{prob['name']}/{arch_name}lr~{number_name(float(lr))}/"
                                f"T~{number_name(float(temp))}/initial~{initial}")  # fmt: skip
                        points.append(PointSpec("learning", name, int(cfg["seed"]), params))
    return points


def _learning_variants(prob: Mapping[str, Any]):
    """(optimizer, its problem parameters, its name part) for each optimizer (x width x depth
    x batch size for teacher-student problems)."""
    if prob["kind"] in ("quadratic", "barrier"):
        extra = (
            {k: float(prob[k]) for k in ("barrier", "barrier_width")}
            if prob["kind"] == "barrier"
            else {}
        )
        if prob.get("data_disorder"):
            extra["data_disorder"] = float(prob["data_disorder"])
        for opt in optimizers(prob):
            yield (
                opt,
                {
                    "hessian_eigenvalues": [float(v) for v in prob["hessian_eigenvalues"]],
                    "rotation": float(prob["rotation"]),
                    "noise_eigenvalues": [float(v) for v in prob.get("noise_eigenvalues", [])],
                    **extra,
                    **({"momentum": float(prob["momentum"])} if opt == "momentum" else {}),
                },
                ("" if isinstance(prob["optimizer"], str) else f"opt~{opt}/"),
            )
        return
    data = {
        "input_dim": int(prob["input_dim"]), "activation": prob["activation"],
        "teacher_width": int(prob["teacher"]["width"]),
        "teacher_depth": int(prob["teacher"]["depth"]),
        **{k: int(prob[k]) for k in ("train_size", "test_size", "probes", "data_seed")},
        **{k: float(prob[k]) for k in ("label_noise", "weight_decay", "momentum")},
    }  # fmt: skip
    for opt in optimizers(prob):
        batches = prob.get("batch_sizes", [prob["train_size"]]) if opt == "sgd" else [
            prob["train_size"]]  # fmt: skip
        for width in prob["widths"]:
            for depth in prob["depths"]:
                for batch in batches:
                    arch = {**data, "width": int(width), "depth": int(depth),
                            "batch_size": int(batch)}  # fmt: skip
                    yield opt, arch, f"opt~{opt}/N~{width}/L~{depth}/B~{batch}/"


def figures_for(cfg: Mapping[str, Any], figures: tuple[str, ...]) -> list[str]:
    """Every one of its figures, whatever the config."""
    return list(figures)
