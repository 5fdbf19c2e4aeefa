"""Load and validate configs, and expand each study's sweep into named points.

Validation is JSON-schema (config/schema.yaml) plus cross-field checks; every error names the
offending key path, e.g. ``studies.npoint.families[1].arch``.  Loading never imports JAX, so the
Snakefile can build a DAG quickly.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def _shipped(name: str) -> Path:
    """A file of the checkout's config/ folder: the copy installed as package data
    (``nnfield/data``, a wheel or ``pip install .``), else the checkout's own (``pip install -e .``
    or a source tree)."""
    here = Path(__file__).resolve()
    installed = here.parent / "data" / name
    return installed if installed.is_file() else here.parents[2] / "config" / name


SCHEMA_PATH = _shipped("schema.yaml")
DEFAULT_CONFIG_PATH = _shipped("config.yaml")
"""The default sweep as shipped (the workflow itself reads ./config/config.yaml)."""


class ConfigError(ValueError):
    """A config value is missing, malformed or inconsistent; the message names the key."""


@dataclass(frozen=True)
class PointSpec:
    """One sweep point: everything a simulate job needs, and nothing about how it is sharded.

    ``name`` is Paramspace-style (``family~relu/width~10``) and doubles as the result path.
    """

    study: str
    name: str
    seed: int
    params: Mapping[str, Any] = field(hash=False)

    def to_json(self) -> str:
        return json.dumps(
            {"study": self.study, "name": self.name, "seed": self.seed, "params": self.params},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> PointSpec:
        try:
            raw = json.loads(text)
            return cls(raw["study"], raw["name"], int(raw["seed"]), raw["params"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"malformed point spec: {err}") from err

    @property
    def sha256(self) -> str:
        """Hash of the point's full specification (stored as ``config_sha256``)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


COUNT_PARAMETERS = ("width", "networks", "block_size", "shards", "depth", "neurons", "steps",
                    "input_dim", "train_size", "subsystems", "time_blocks")  # fmt: skip
"""Spec parameters that count something: positive integers."""


def check_spec(spec: PointSpec) -> None:
    """Refuse a hand-written point spec (``nnfield simulate --spec``) with an unknown study, a
    count that is not a positive integer, or a non-finite number, naming the parameter."""
    if spec.study not in EXPANDERS:
        raise ConfigError(f"point spec {spec.name}: unknown study {spec.study!r}; known: "
                          f"{', '.join(EXPANDERS)}")  # fmt: skip
    if not isinstance(spec.params, Mapping):
        raise ConfigError(f"point spec {spec.name}: params must be a mapping")
    for name in COUNT_PARAMETERS:
        value = spec.params.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"point spec {spec.name}: parameter {name} = {value!r} must be a "
                              "positive integer")  # fmt: skip
    try:
        _refuse_nonfinite(dict(spec.params))
    except ConfigError as err:
        raise ConfigError(f"point spec {spec.name}: {err}") from None


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _fill_defaults(validator_cls):
    """A validator class that also writes schema defaults into the instance."""
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The JSON schema (by default the one shipped with the package)."""
    path = Path(path)
    try:
        with open(path) as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError as err:
        raise ConfigError(f"config schema {path} not found: reinstall nnfield") from err


def validate(config: Mapping[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict:
    """A validated copy of ``config`` with defaults filled in; raises ConfigError otherwise."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"config key '<top level>': must be a mapping of keys to values, got "
                          f"{type(config).__name__}")  # fmt: skip
    _refuse_huge(config)
    config = copy.deepcopy(dict(config))
    _refuse_nonfinite(config)
    schema = load_schema(schema_path)
    validator = _fill_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path)))
    )
    if errors:
        problems = [_describe(err) for err in errors]
        first_path, first_detail = problems[0]
        others = [f"'{path}'" for path, _ in problems[1:5]]
        more = ""
        if others:
            rest = len(problems) - 1 - len(others)
            more = f" (also: {', '.join(others)}{f' and {rest} more' if rest else ''})"
        raise ConfigError(f"config key '{first_path}': {first_detail}{more}")
    _cross_checks(config)
    points = {study: EXPANDERS[study](cfg) for study, cfg in config["studies"].items()}
    _check_point_names(points)
    from nnfield import budget  # imports this module

    budget.check(points, config["limits"])
    return config


MAX_CONFIG_VALUES = 10**6
"""Values (scalars, lists, mappings) a config may hold once every shared node is expanded."""


def _refuse_huge(config: Any) -> None:
    """Refuse a config that would hold more than MAX_CONFIG_VALUES values when walked: shared
    nodes (what YAML aliases load to, whatever loader read them) nest into an exponential tree
    that validation would walk for minutes and gigabytes.  Counted per distinct node, so
    harmless sharing (a list reused in a Python-built config) costs nothing."""
    sizes: dict[int, int] = {}

    def size(value: Any) -> int:
        if not isinstance(value, Mapping | list):
            return 1
        if id(value) not in sizes:
            sizes[id(value)] = 0  # a cycle counts once
            items = value.values() if isinstance(value, Mapping) else value
            sizes[id(value)] = 1 + sum(size(item) for item in items)
        return sizes[id(value)]

    total = size(config)
    if total > MAX_CONFIG_VALUES:
        raise ConfigError(f"config key '<top level>': the config holds {total:.3g} values once "
                          f"expanded, more than {MAX_CONFIG_VALUES:.0e} (YAML aliases?); write "
                          "the values out")  # fmt: skip


def _refuse_nonfinite(value: Any, path: tuple = ()) -> None:
    """Refuse NaN and infinities anywhere in the config (YAML's .nan and .inf pass a JSON schema's
    number checks): a NaN significance or threshold would switch a check off in silence, and an
    infinite size would run out of memory."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{_key_path(path)}': {value} is not a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_nonfinite(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _refuse_nonfinite(item, (*path, i))


def _check_point_names(points: Mapping[str, list[PointSpec]]) -> None:
    """Refuse two points of a study with one name: names print numbers to 6 significant digits
    and the sweep is keyed by name, so nearby values would otherwise collapse into one point."""
    for study, specs in points.items():
        seen: dict[str, PointSpec] = {}
        for spec in specs:
            other = seen.setdefault(spec.name, spec)
            if other is spec:
                continue
            keys = sorted(set(spec.params) | set(other.params))
            diff = [f"{k} = {other.params.get(k)!r} and {spec.params.get(k)!r}" for k in keys
                    if other.params.get(k) != spec.params.get(k)]  # fmt: skip
            why = "the same point is listed twice"
            if diff:
                why = ("; ".join(diff) + " differ below the 6 significant digits of point "
                       "names; make them differ within 6 digits")  # fmt: skip
            raise ConfigError(f"config key 'studies.{study}': two points are both named "
                              f"'{spec.name}': {why}")  # fmt: skip


def _describe(err: jsonschema.ValidationError) -> tuple[str, str]:
    """(key path, what is wrong) of one schema error; a missing or unknown key is named
    itself rather than the mapping that lacks or holds it."""
    path = list(err.path)
    if err.validator == "required":
        missing = err.message.split("'")[1]
        return _key_path([*path, missing]), "required key is missing"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = sorted(err.schema.get("properties", {}))
        unknown = sorted(k for k in err.instance if k not in known)
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            return _key_path([*path, unknown[0]]), f"unknown key{hint}"
    return _key_path(path), err.message


def _cross_checks(config: Mapping[str, Any]) -> None:
    """Consistency checks JSON schema cannot express."""
    depth = config.get("studies", {}).get("depth")
    if depth:
        _check_depth(depth)
    learning = config.get("studies", {}).get("learning")
    if learning:
        _check_learning(learning)
    hidden = config.get("studies", {}).get("hidden")
    if hidden:
        _check_hidden(hidden)
    npoint = config.get("studies", {}).get("npoint")
    if npoint:
        _check_unique_names(npoint["families"], "studies.npoint.families")
        for i, fam in enumerate(npoint["families"]):
            where = f"studies.npoint.families[{i}]"
            _check_input_lengths(fam, where)
            _check_coupling_inputs(npoint, fam, where)
            _check_gauss_range(npoint, fam, where)
            _check_degenerate_prior(fam, where)
            _check_blocks(
                fam.get("networks", npoint["networks"]), npoint["block_size"], npoint["shards"],
                f"{where if 'networks' in fam else 'studies.npoint'}.networks",
                "studies.npoint.block_size",
            )  # fmt: skip


def _check_unique_names(items: list, key: str) -> None:
    """Every entry of the list at ``key`` has its own ``name`` (the repeat is named)."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item["name"]
        if name in seen:
            raise ConfigError(f"config key '{key}[{i}].name': {name!r} is already the name of "
                              f"{key}[{seen[name]}]")  # fmt: skip
        seen[name] = i


def _check_input_lengths(fam: Mapping[str, Any], where: str) -> None:
    """Every input of a family has ``input_dim`` components (a scalar counts as one)."""
    d = fam.get("input_dim", 1)
    for j, x in enumerate(fam["inputs"]):
        length = 1 if isinstance(x, int | float) else len(x)
        if length != d:
            raise ConfigError(
                f"config key '{where}.inputs[{j}]': has {length} components, but input_dim is {d}"
            )


def _check_blocks(
    networks: int, block_size: int, shards: int, networks_key: str, block_key: str
) -> None:
    """Ensembles split into whole blocks, enough of them for error bars and for every shard."""
    if networks % block_size:
        raise ConfigError(
            f"config key '{networks_key}': {networks} is not a multiple of block_size {block_size}"
        )
    blocks = networks // block_size
    if blocks < 2 * shards or blocks < 10:
        raise ConfigError(
            f"config key '{block_key}': {networks} networks give {blocks} blocks; "
            "error bars need >= 10 blocks and >= 2 per shard"
        )


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
    A single zero-variance input with sigma_b1 > 0, or for Gauss-net, runs."""
    if float(fam["sigma_w1"]) == 0 and float(fam["sigma_b1"]) == 0:
        raise ConfigError(f"config key '{where}.sigma_w1': sigma_w1 and sigma_b1 are both 0, so "
                          "every network's output is 0")  # fmt: skip
    sw0, sb0 = float(fam["sigma_w0"]), float(fam["sigma_b0"])
    norms = [float(x) ** 2 if isinstance(x, int | float) else sum(float(v) ** 2 for v in x)
             for x in fam["inputs"]]  # fmt: skip
    if all(sb0**2 + sw0**2 * norm == 0 for norm in norms):
        raise ConfigError(
            f"config key '{where}.sigma_w0': the preactivation variance sigma_b0^2 + sigma_w0^2 "
            "|x|^2 / d is 0 at every input, so every hidden unit is the constant f(0) and the "
            "correlator theory has nothing to integrate; give sigma_w0 or sigma_b0 > 0"
        )
    from nnfield.activations import zero_at_origin

    if not zero_at_origin(fam["arch"]) or float(fam["sigma_b1"]) != 0:
        return  # units not 0 at zero preactivation (gauss, softplus), or a readout bias
    for i, norm in enumerate(norms):
        if sb0**2 + sw0**2 * norm == 0:
            raise ConfigError(
                f"config key '{where}.inputs[{i}]': every network's output is 0 at this input "
                f"(sigma_b0^2 + sigma_w0^2 |x|^2 / d = 0, so every {fam['arch']} unit is 0, and "
                "sigma_b1 = 0); give sigma_b0 or sigma_b1 > 0, or a nonzero input"
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
    """Panels of ``theory.couplings.radial_panels`` for a family (scale 1/max(1, sigma_w0),
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


def _check_depth(depth: Mapping[str, Any]) -> None:
    """Cross-field checks of the depth study."""
    from nnfield.theory.deep import CRITICAL_POINTS

    key = "studies.depth"
    _check_unique_names(depth["families"], f"{key}.families")
    for i, fam in enumerate(depth["families"]):
        where = f"{key}.families[{i}]"
        _check_input_lengths(fam, where)
        if fam["activation"] not in CRITICAL_POINTS and not ("cw" in fam and "cb" in fam):
            raise ConfigError(
                f"config key '{where}.cw': {fam['activation']} has no tabulated critical point; "
                "give cw and cb"
            )
    _check_blocks(depth["networks"], depth["block_size"], depth["shards"], f"{key}.networks",
                  f"{key}.block_size")  # fmt: skip


def optimizers(prob: Mapping[str, Any]) -> list[str]:
    """The optimizers of a learning problem (one name or a list in the config)."""
    opt = prob["optimizer"]
    return [opt] if isinstance(opt, str) else list(opt)


def _check_learning(cfg: Mapping[str, Any]) -> None:
    """Cross-field checks of the learning study (stability, noise, batches, block count)."""
    key = "studies.learning"
    _check_unique_names(cfg["problems"], f"{key}.problems")
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
    _check_blocks(cfg["networks"], cfg["block_size"], cfg["shards"], f"{key}.networks",
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
    # the bound of nnfield.potential.BarrierPotential.max_curvature (no JAX import here)
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


HIDDEN_ONLY = {"antisymmetric_fractions": ("ginibre",), "couplings": ("rings",),
               "coupling_matrix": ("rings",)}  # fmt: skip
"""Ensemble keys that apply to some weight kinds only."""


def _check_hidden(cfg: Mapping[str, Any]) -> None:
    """Cross-field checks of the hidden study: subsystems, kind-specific keys, stability of
    the linear dynamics, the annealed mixture, time blocks and network blocks."""
    from nnfield.hidden_weights import WeightEnsemble

    key = "studies.hidden"
    _check_unique_names(cfg["ensembles"], f"{key}.ensembles")
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
        if ens["weights"] == "rings" and ens["subsystems"] < 2 and any(ens.get("couplings", [])):
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
                        ens["weights"], ens["neurons"], ens["subsystems"], a, coupling=eps,
                        coupling_matrix=ens.get("coupling_matrix", "symmetric"),
                    ).spectral_radius()  # fmt: skip
                    if not gain * radius < 1:
                        raise ConfigError(
                            f"config key '{where}.gains[{j}]': g = {gain} times the spectral "
                            f"radius {radius:g} of W (a = {a}, eps = {eps}) must be < 1, or "
                            "the linear dynamics diverges"
                        )
    _check_blocks(cfg["networks"], cfg["block_size"], cfg["shards"], f"{key}.networks",
                  f"{key}.block_size")  # fmt: skip


MAX_CONFIG_BYTES = 4 * 2**20
"""Config files larger than this are refused (a sweep of 10^5 points is a few kB)."""


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases and anchors (a few hundred bytes of nested aliases
    expand to gigabytes when walked: "billion laughs") and without duplicate keys (YAML keeps
    the last in silence)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.constructor.ConstructorError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed in a "
                "config: write the values out", event.start_mark)  # fmt: skip
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> Any:
    """A config file's content, read with :class:`StrictLoader`; a ConfigError names the file
    (and line) of anything wrong."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory, not a file")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} has {size} bytes, more than the "
                              f"{MAX_CONFIG_BYTES} a config may have")  # fmt: skip
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=StrictLoader)
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} not found") from err
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text ({err.reason})") from err
    except yaml.YAMLError as err:
        where = " ".join(str(err).split())  # one line: the problem and its line and column
        raise ConfigError(f"config file {path} is not valid YAML: {where}") from err


def check_files(paths) -> None:
    """Re-read config files (the Snakefile's and --configfile's) with :class:`StrictLoader`:
    Snakemake's own loader accepts aliases and duplicate keys."""
    for path in paths:
        read_yaml(path)


def load(path: str | Path = DEFAULT_CONFIG_PATH) -> dict:
    """Read a YAML config file and validate it (alone: see :func:`load_as_workflow`)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return validate(raw)


WORKFLOW_CONFIG = "config/config.yaml"
"""The Snakefile's ``configfile:``, relative to the working directory (as Snakemake reads it)."""


def load_as_workflow(path: str | Path, replace: bool = False, workdir: str | Path = ".") -> dict:
    """The validated config Snakemake runs in ``workdir`` for ``--configfile path``: ``path``
    merged into the workflow's config/config.yaml of that directory exactly as Snakemake merges
    it (mappings combine, lists and other values are replaced; where the directory has no
    config/config.yaml, Snakemake runs ``path`` alone), or alone with ``replace`` (Snakemake's
    ``--replace-workflow-config``)."""
    from snakemake.utils import update_config

    overlay = read_yaml(path)
    if not isinstance(overlay, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    default = Path(workdir) / WORKFLOW_CONFIG
    merged = read_yaml(default) if default.is_file() and not replace else {}
    update_config(merged, overlay)
    return validate(merged)


def record_text(config: Mapping[str, Any]) -> str:
    """The run record's text: a validated config as YAML, read back by ``nnfield verify``."""
    text = "# validated configuration of the latest run (written by the workflow)\n"
    return text + yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=True)


def write_record(config: Mapping[str, Any], path: str | Path) -> bool:
    """Write the run record of ``config`` atomically, only if it changed; True if written."""
    from nnfield.atomic import write_text_if_changed

    return write_text_if_changed(path, record_text(config))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_npoint(cfg: Mapping[str, Any]) -> list[PointSpec]:
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
            name = f"family~{fam['name']}/width~{_number(width)}"
            points.append(PointSpec("npoint", name, int(cfg["seed"]), params))
    return points


def expand_depth(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the depth study: every family at every width and depth."""
    from nnfield.theory.deep import critical_point

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


def expand_learning(cfg: Mapping[str, Any]) -> list[PointSpec]:
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
                        name = (f"problem~{prob['name']}/{arch_name}lr~{_number(float(lr))}/"
                                f"T~{_number(float(temp))}/initial~{initial}")  # fmt: skip
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


def expand_hidden(cfg: Mapping[str, Any]) -> list[PointSpec]:
    """Points of the hidden study: ensemble x contraction x (antisymmetric fraction, ginibre)
    x (coupling, rings) x gain x noise."""
    points = []
    common = {k: int(cfg[k]) for k in ("networks", "block_size", "shards", "steps", "burn_in",
                                        "time_blocks")}  # fmt: skip
    for ens in cfg["ensembles"]:
        kind = ens["weights"]
        fractions = ens.get("antisymmetric_fractions", [0.5]) if kind == "ginibre" else [None]
        couplings = ens.get("couplings", [0.0]) if kind == "rings" else [None]
        for a in ens["contractions"]:
            for k in fractions:
                for eps in couplings:
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
                            name = (
                                f"ensemble~{ens['name']}/a~{_number(float(a))}/"
                                + ("" if k is None else f"k~{_number(float(k))}/")
                                + ("" if eps is None else f"eps~{_number(float(eps))}/")
                                + f"g~{_number(float(gain))}/s~{_number(float(noise))}"
                            )
                            points.append(PointSpec("hidden", name, int(cfg["seed"]), params))
    return points


EXPANDERS = {"npoint": expand_npoint, "depth": expand_depth, "learning": expand_learning,
             "hidden": expand_hidden}  # fmt: skip


def expand(config: Mapping[str, Any]) -> dict[str, dict[str, PointSpec]]:
    """All points of all configured studies: ``{study: {point name: spec}}``."""
    out = {}
    for study, cfg in config.get("studies", {}).items():
        specs = EXPANDERS[study](cfg)
        out[study] = {spec.name: spec for spec in specs}
    return out
