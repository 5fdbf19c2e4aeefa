"""The npoint study's sweep: cross-field checks of its config block, its points, their cost.

Import-light (no JAX, no theory): the Snakefile builds the DAG from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from math import comb
from typing import Any

from nnfield.config import (
    ConfigError,
    PointSpec,
    check_blocks,
    check_input_lengths,
    check_unique_names,
    number_name,
)
from nnfield.studies.base import Cost

COUNT_PARAMETERS = ("width", "input_dim")
"""Spec parameters that count something: positive integers."""
SETUP_SECONDS = 2.0
"""Per task: compilation (or a cache load) and set-up."""
SECONDS_PER_UNIT = 1.3e-9
"""Single-core seconds per unit of :func:`cost` (units: see there)."""


def check(npoint: Mapping[str, Any]) -> None:
    """Consistency checks of ``studies.npoint`` that JSON schema cannot express."""
    check_unique_names(npoint["families"], "studies.npoint.families")
    for i, fam in enumerate(npoint["families"]):
        where = f"studies.npoint.families[{i}]"
        check_input_lengths(fam, where)
        _check_coupling_inputs(npoint, fam, where)
        _check_gauss_range(npoint, fam, where)
        _check_degenerate_prior(fam, where)
        _check_phase_prior(fam, where)
        check_blocks(
            fam.get("networks", npoint["networks"]), npoint["block_size"], npoint["shards"],
            f"{where if 'networks' in fam else 'studies.npoint'}.networks",
            "studies.npoint.block_size",
        )  # fmt: skip
    _check_action(npoint)


def _check_action(npoint: Mapping[str, Any]) -> None:
    """A family with an ``action`` has d = 1 inputs, held-out indices among its inputs, more
    training tuples than coefficients and at least two block pairs."""
    for i, fam in enumerate(npoint["families"]):
        settings = fam.get("action")
        if settings is None:
            continue
        where = f"studies.npoint.families[{i}].action"
        inputs = fam["inputs"]
        if any(not isinstance(x, int | float) and len(x) != 1 for x in inputs):
            raise ConfigError(f"{where}: the action's Mercer modes need d = 1 inputs")
        n = len(inputs)
        held = settings["held_out"]
        if max(held) >= n:
            raise ConfigError(f"{where}.held_out: index {max(held)} is not one of the family's "
                              f"{n} inputs (0..{n - 1})")  # fmt: skip
        train = n - len(held)
        coefficients = comb(settings["modes"] + 3, 4)
        if comb(train + 3, 4) <= coefficients:
            raise ConfigError(
                f"{where}.modes: {settings['modes']} modes have {coefficients} coefficients, but "
                f"the {train} training inputs give only {comb(train + 3, 4)} 4-tuples: use fewer "
                "modes, more inputs or fewer held out"
            )
        blocks = fam.get("networks", npoint["networks"]) // npoint["block_size"]
        if blocks < 4:
            raise ConfigError(f"{where}: the held-out tests pair even and odd blocks and need at "
                              f"least 4 blocks, the family has {blocks}")  # fmt: skip
        interval = settings.get("interval")
        if interval is not None and not interval[0] < interval[1]:
            raise ConfigError(f"{where}.interval: needs lo < hi, got {interval}")


def cost(spec: PointSpec) -> Cost:
    """Per network: width x n x (n + d) (hidden layer and conditional covariance) plus T4 x T2
    (the 4-tuple x pair product), n inputs of dimension d, T_k tuples of k inputs; a network
    holds width x (n + d + 2) values."""
    p = spec.params
    n, d = len(p["inputs"]), p["input_dim"]
    pairs, quads = math.comb(n + 1, 2), math.comb(n + 3, 4)
    return Cost(
        units=float(p["networks"]) * (p["width"] * n * (n + d) + quads * pairs),
        seconds_per_unit=SECONDS_PER_UNIT,
        setup_seconds=SETUP_SECONDS,
        values_per_network=p["width"] * (n + d + 2),
    )


def analysis_options(npoint: Mapping[str, Any]) -> dict[str, Any]:
    """The ``analysis`` block plus ``action``: the families' action settings, each with its
    family's name (analysis-only keys of a family, so no point's spec holds them)."""
    options = dict(npoint.get("analysis", {}))
    options["action"] = [{"family": fam["name"], **fam["action"]}
                         for fam in npoint["families"] if "action" in fam]  # fmt: skip
    return options


def figures_for(npoint: Mapping[str, Any], figures: tuple[str, ...]) -> list[str]:
    """Its figures, without the coupling figures where ``analysis.couplings.enabled`` is false
    (nothing to draw)."""
    analysis = npoint.get("analysis", {})
    out = list(figures)
    if not analysis.get("couplings", {}).get("enabled", True):
        out = [name for name in out if not name.startswith("coupling_")]
    if not any("action" in fam for fam in npoint.get("families", [])):
        out = [name for name in out if name != "action_nonlocal"]
    return out


FLOAT_LOG_RANGE = {"float32": (-87.33, 88.72), "float64": (-708.39, 709.78)}
"""ln of the smallest normal and of the largest finite number of each sampling dtype."""


def _check_gauss_range(npoint: Mapping[str, Any], fam: Mapping[str, Any], where: str) -> None:
    """Gauss-net hidden units h = exp(u - k), u ~ N(0, k), k = sb0^2 + sw0^2 |x|^2 / d, must
    stay inside the sampling dtype's normal range for every draw of the ensemble.

    The largest |u| / sqrt(k) among the n = networks x width x inputs draws is about
    z = sqrt(2 ln n) + 1, so ln h spans [-k - z sqrt(k), -k + z sqrt(k)].  Above the range the
    outputs overflow to inf; below it units flush to 0 and every correlator silently collapses
    onto the readout bias.
    """
    if fam["arch"] != "gauss":
        return
    dtype = npoint["dtype"]
    d = fam.get("input_dim", 1)
    sw0, sb0 = float(fam["sigma_w0"]), float(fam["sigma_b0"])
    norms = [float(x) ** 2 if isinstance(x, int | float) else sum(float(v) ** 2 for v in x)
             for x in fam["inputs"]]  # fmt: skip
    k = sb0**2 + sw0**2 * max(norms) / d
    draws = fam.get("networks", npoint["networks"]) * max(fam.get("widths", npoint["widths"]))
    z = math.sqrt(2 * math.log(draws * len(norms))) + 1
    low, high = -k - z * math.sqrt(k), -k + z * math.sqrt(k)
    floor, ceiling = FLOAT_LOG_RANGE[dtype]
    if low < floor or high > ceiling:
        key = "sigma_b0" if sb0**2 >= k / 2 else "sigma_w0"
        raise ConfigError(
            f"config key '{where}.{key}': Gauss-net units exp(u - k) with k = sb0^2 + "
            f"sw0^2 |x|^2/d = {k:.4g} span e^{low:.0f}..e^{high:.0f} over this ensemble, outside "
            f"the {dtype} range e^{floor:.0f}..e^{ceiling:.0f} (they would "
            f"{'underflow to 0' if low < floor else 'overflow'}); use smaller sigmas"
            + (" or studies.npoint.dtype: float64" if dtype == "float32" else "")
        )


def _check_degenerate_prior(fam: Mapping[str, Any], where: str) -> None:
    """Refuse degenerate priors: a readout with sigma_w1 = sigma_b1 = 0 (every output is 0); a
    preactivation variance sb0^2 + sw0^2 |x|^2 / d that is zero at every input (constant hidden
    units: the theory's quadrature divides by it); and sigma_b1 = 0 at an input of zero
    preactivation variance for an activation with f(0) = 0 (relu, erf: the output is 0 there).
    A single zero-variance input with sigma_b1 > 0, or for Gauss-net, runs; cos-net's units
    cos(W0 . x + b0) stay random through the uniform phase b0 at any variance."""
    if float(fam["sigma_w1"]) == 0 and float(fam["sigma_b1"]) == 0:
        raise ConfigError(f"config key '{where}.sigma_w1': sigma_w1 and sigma_b1 are both 0, so "
                          "every network's output is 0")  # fmt: skip
    sw0, sb0 = float(fam["sigma_w0"]), float(fam["sigma_b0"])
    norms = [float(x) ** 2 if isinstance(x, int | float) else sum(float(v) ** 2 for v in x)
             for x in fam["inputs"]]  # fmt: skip
    from nnfield.activations import REGISTRY, zero_at_origin

    uniform_phase = REGISTRY[fam["arch"]].uniform_phase  # cos(b0): random even at sw0 = 0
    if all(sb0**2 + sw0**2 * norm == 0 for norm in norms) and not uniform_phase:
        raise ConfigError(
            f"config key '{where}.sigma_w0': the preactivation variance sigma_b0^2 + sigma_w0^2 "
            "|x|^2 / d is 0 at every input, so every hidden unit is the constant f(0) and the "
            "correlator theory has nothing to integrate; give sigma_w0 or sigma_b0 > 0"
        )
    if not zero_at_origin(fam["arch"]) or float(fam["sigma_b1"]) != 0:
        return  # units not 0 at zero preactivation (gauss, softplus), or a readout bias
    for i, norm in enumerate(norms):
        if sb0**2 + sw0**2 * norm == 0:
            raise ConfigError(
                f"config key '{where}.inputs[{i}]': every network's output is 0 at this input "
                f"(sigma_b0^2 + sigma_w0^2 |x|^2 / d = 0, so every {fam['arch']} unit is 0, and "
                "sigma_b1 = 0); give sigma_b0 or sigma_b1 > 0, or a nonzero input"
            )


def _check_phase_prior(fam: Mapping[str, Any], where: str) -> None:
    """The cos-net's bias is a uniform phase b0 ~ U(-pi, pi), not sigma_b0 times a normal: a
    nonzero sigma_b0 would be stored but not used, so it is refused."""
    from nnfield.activations import REGISTRY

    if REGISTRY[fam["arch"]].uniform_phase and float(fam["sigma_b0"]) != 0:
        raise ConfigError(
            f"config key '{where}.sigma_b0': {fam['arch']} units draw their bias as a uniform "
            "phase b0 ~ U(-pi, pi) (the translation-invariant cos-net), so sigma_b0 is not "
            "used; set sigma_b0: 0"
        )


def _coupling_architectures() -> tuple[str, ...]:
    """npoint architectures whose couplings are computed: those with a closed-form kernel over
    the integration nodes (nnfield.activations; softplus has only a quadrature kernel)."""
    from nnfield.activations import REGISTRY, SINGLE_LAYER

    return tuple(name for name in SINGLE_LAYER if REGISTRY[name].closed_form)


MAX_RADIAL_PANELS = 400
"""Fine radial panels of the coupling quadrature at most (the default config needs 16)."""


MAX_RIDGE_PANELS = 200_000
"""Panels of the Gauss-net ridge rule in d = 1 at most (the default config needs about 400)."""


def radial_panel_count(cutoff: float, sigma_w0: float, radius: float) -> int:
    """Panels of ``coupling_theory.radial_panels`` for a family (scale 1/max(1, sigma_w0),
    dense region 1.5 x the largest |x|): uniform panels of scale/4 up to max(4 scale, dense),
    then doubling ones.  Counted here without importing the theory (tests compare the two)."""
    scale = 1.0 / max(1.0, sigma_w0)
    uniform_end = min(cutoff, max(4 * scale, 1.5 * radius))
    count = math.ceil(uniform_end / (scale / 4) * (1 - 1e-12))
    end = uniform_end
    while end < cutoff * (1 - 1e-12):
        end, count = min(2 * end, cutoff), count + 1
    return count


def _check_coupling_cost(fam: Mapping[str, Any], cutoffs, radius: float, where: str,
                         key: str) -> None:  # fmt: skip
    """Bound the analysis cost of a family's coupling integrals, which grows with sigma_w0 (the
    kernels vary on |y| ~ 1/sigma_w0, so the quadrature refines with it) and, for the Gauss-net
    ridge in d = 1, with sigma_w0 x cutoff."""
    sw0 = float(fam["sigma_w0"])
    uniform = radial_panel_count(max(cutoffs), sw0, radius) - radial_panel_count(
        max(cutoffs), 1.0, 0.0
    )
    if uniform > MAX_RADIAL_PANELS:
        raise ConfigError(
            f"config key '{where}.sigma_w0': the coupling quadrature would need about "
            f"{uniform} fine radial panels (6 x sigma_w0 x largest |x| = {6 * sw0 * radius:.3g}), "
            f"more than {MAX_RADIAL_PANELS}: its cost grows with sigma_w0; lower sigma_w0 or the "
            f"inputs, or set {key}.enabled: false"
        )
    if fam["arch"] == "gauss" and fam.get("input_dim", 1) == 1:
        ridge = math.ceil(4 * max(cutoffs) * sw0)
        if ridge > MAX_RIDGE_PANELS:
            raise ConfigError(
                f"config key '{where}.sigma_w0': the Gauss-net ridge quadrature would need "
                f"{ridge} panels (4 x largest cutoff x sigma_w0), more than {MAX_RIDGE_PANELS}; "
                f"lower sigma_w0 or {key}.cutoffs, or set {key}.enabled: false"
            )


def _check_coupling_inputs(npoint: Mapping[str, Any], fam: Mapping[str, Any], where: str) -> None:
    """Coupling fits need the inputs inside every cutoff and more 4-tuples than coefficients."""
    couplings = npoint.get("analysis", {}).get("couplings", {})
    if not couplings.get("enabled", True):
        return
    key = "studies.npoint.analysis.couplings"
    cutoffs = couplings["cutoffs"]
    if fam["arch"] not in _coupling_architectures():
        raise ConfigError(
            f"config key '{key}.enabled': the coupling integrals need the closed-form kernel of "
            f"{', '.join(_coupling_architectures())}; {where} is {fam['arch']} (its kernel is a "
            "quadrature, too slow over the integration nodes): set enabled: false"
        )
    if couplings["reference_cutoff"] not in cutoffs:
        raise ConfigError(
            f"config key '{key}.reference_cutoff': {couplings['reference_cutoff']} is not one of "
            f"the cutoffs {cutoffs}"
        )
    radius = max(
        abs(float(x)) if isinstance(x, int | float) else sum(float(v) ** 2 for v in x) ** 0.5
        for x in fam["inputs"]
    )
    if min(cutoffs) <= radius:
        raise ConfigError(
            f"config key '{key}.cutoffs': cutoff {min(cutoffs)} does not contain the inputs of "
            f"{where} (largest |x| = {radius:g}); every cutoff must exceed it"
        )
    _check_coupling_cost(fam, cutoffs, radius, where, key)
    n = len(fam["inputs"])
    tuples4 = comb(n + 3, 4)
    if tuples4 <= couplings["basis"]:
        raise ConfigError(
            f"config key '{where}.inputs': {n} input(s) give {tuples4} sorted 4-tuple(s), too "
            f"few to fit lambda(y) with basis {couplings['basis']} (needs more than "
            f"{couplings['basis']}); add inputs, lower {key}.basis or set {key}.enabled: false"
        )


def expand(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the npoint study: every family at every one of its widths."""
    points = []
    for fam in cfg["families"]:
        d = fam.get("input_dim", 1)
        inputs = [
            [float(x)] if isinstance(x, int | float) else [float(v) for v in x]
            for x in fam["inputs"]
        ]
        for width in fam.get("widths", cfg["widths"]):
            params = {
                "family": fam["name"],
                "arch": fam["arch"],
                "width": int(width),
                "input_dim": d,
                "inputs": inputs,
                "sigma_w0": float(fam["sigma_w0"]),
                "sigma_b0": float(fam["sigma_b0"]),
                "sigma_w1": float(fam["sigma_w1"]),
                "sigma_b1": float(fam["sigma_b1"]),
                "networks": int(fam.get("networks", cfg["networks"])),
                "block_size": int(cfg["block_size"]),
                "shards": int(cfg["shards"]),
                "dtype": cfg["dtype"],
                "estimator": fam.get("estimator", cfg["estimator"]),
            }
            if "readout_scale" in fam:  # absent otherwise: specs of other families unchanged
                params["readout_scale_shape"] = float(fam["readout_scale"]["shape"])
            name = f"family~{fam['name']}/width~{number_name(width)}"
            points.append(PointSpec("npoint", name, int(cfg["seed"]), params))
    return points
