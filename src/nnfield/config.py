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


COUNT_PARAMETERS = ("networks", "block_size", "shards")
"""Spec parameters of every study that count something: positive integers (each study adds its
own, ``Study.count_parameters``)."""


def check_spec(spec: PointSpec) -> None:
    """Refuse a hand-written point spec (``nnfield simulate --spec``) with an unknown study, a
    count that is not a positive integer, or a non-finite number, naming the parameter."""
    from nnfield.studies import REGISTRY, load

    if spec.study not in REGISTRY:
        raise ConfigError(f"point spec {spec.name}: unknown study {spec.study!r}; known: "
                          f"{', '.join(REGISTRY)}")  # fmt: skip
    if not isinstance(spec.params, Mapping):
        raise ConfigError(f"point spec {spec.name}: params must be a mapping")
    for name in (*COUNT_PARAMETERS, *load(spec.study).count_parameters()):
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
    """The JSON schema: the base schema at ``path`` (by default the one shipped with the
    package), with every registered study's block (``nnfield.studies.REGISTRY``, each study's
    ``schema.yaml``) as a property of ``studies`` and its definitions in ``$defs``."""
    from nnfield.studies import REGISTRY, load

    path = Path(path)
    try:
        with open(path) as fh:
            schema = yaml.safe_load(fh)
    except FileNotFoundError as err:
        raise ConfigError(f"config schema {path} not found: reinstall nnfield") from err
    defs = schema.setdefault("$defs", {})
    studies = schema["properties"]["studies"].setdefault("properties", {})
    for name in REGISTRY:
        fragment = load(name).schema()
        clash = sorted(set(fragment) & set(defs))
        if clash or name not in fragment:
            raise ConfigError(
                f"config schema of study {name}: "
                + (f"defines {', '.join(clash)} again" if clash else f"has no definition {name!r}")
            )
        defs.update(fragment)
        studies[name] = {"$ref": f"#/$defs/{name}"}
    return schema


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
    from nnfield.studies import load

    for study, cfg in config["studies"].items():  # what JSON schema cannot express
        load(study).check(cfg)
    points = {study: load(study).expand(cfg) for study, cfg in config["studies"].items()}
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


def check_unique_names(items: list, key: str) -> None:
    """Every entry of the list at ``key`` has its own ``name`` (the repeat is named)."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item["name"]
        if name in seen:
            raise ConfigError(f"config key '{key}[{i}].name': {name!r} is already the name of "
                              f"{key}[{seen[name]}]")  # fmt: skip
        seen[name] = i


def check_input_lengths(fam: Mapping[str, Any], where: str) -> None:
    """Every input of a family has ``input_dim`` components (a scalar counts as one)."""
    d = fam.get("input_dim", 1)
    for j, x in enumerate(fam["inputs"]):
        length = 1 if isinstance(x, int | float) else len(x)
        if length != d:
            raise ConfigError(
                f"config key '{where}.inputs[{j}]': has {length} components, but input_dim is {d}"
            )


def check_blocks(
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
    from nnfield.engine.atomic import write_text_if_changed

    return write_text_if_changed(path, record_text(config))


def number_name(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand(config: Mapping[str, Any]) -> dict[str, dict[str, PointSpec]]:
    """All points of all configured studies: ``{study: {point name: spec}}``."""
    from nnfield.studies import load

    out = {}
    for study, cfg in config.get("studies", {}).items():
        out[study] = {spec.name: spec for spec in load(study).expand(cfg)}
    return out
