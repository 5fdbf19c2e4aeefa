"""Property-based config validation: random valid configs pass and expand; random invalid ones
(every schema constraint broken in turn, and every cross-field rule) fail naming the key."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnfield import config

SCHEMA = config.load_schema()
SETTINGS = settings(max_examples=int(os.environ.get("NNFIELD_HYPOTHESIS_EXAMPLES", "60")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

names = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=2,
                 unique=True)  # fmt: skip


@st.composite
def blocks(draw, min_blocks: int = 10) -> dict:
    shards = draw(st.integers(1, 3))
    block_size = draw(st.integers(1, 60))
    n_blocks = draw(st.integers(max(min_blocks, 2 * shards), 30))
    return {"networks": block_size * n_blocks, "block_size": block_size, "shards": shards}


@st.composite
def inputs(draw, dim: int, at_least: int, at_most: int) -> list:
    """Inputs inside the unit ball (inside every default cutoff); scalars allowed for d = 1."""
    scale = 1 / dim**0.5
    point = st.lists(st.floats(-scale, scale), min_size=dim, max_size=dim)
    xs = draw(st.lists(point, min_size=at_least, max_size=at_most))
    if dim == 1 and draw(st.booleans()):
        return [x[0] for x in xs]
    return xs


def degenerate(fam: dict) -> bool:
    """The priors config refuses: zero readout, zero preactivation variance at every input, or
    a zero output at some input (relu, erf with sigma_b1 = 0)."""
    sw0, sb0, sw1, sb1 = (float(fam.get(k, 1.0)) for k in
                          ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1"))  # fmt: skip
    norms = [x**2 if isinstance(x, float) else sum(v**2 for v in x) for x in fam["inputs"]]
    zero = [sb0**2 + sw0**2 * n == 0 for n in norms]
    return (
        (sw1 == 0 and sb1 == 0) or all(zero) or (fam["arch"] != "gauss" and sb1 == 0 and any(zero))
    )


@st.composite
def npoint_study(draw) -> dict:
    fams = []
    for name in draw(names):
        dim = draw(st.integers(1, 2))
        fam = {"name": name, "arch": draw(st.sampled_from(["relu", "erf", "gauss"])),
               "input_dim": dim, "inputs": draw(inputs(dim, 2, 4))}  # fmt: skip
        for key in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1"):
            if draw(st.booleans()):
                fam[key] = draw(st.floats(0, 2))
        if degenerate(fam):  # refused by design (a zero output or constant units): repaired
            fam.update(sigma_b0=0.5, sigma_b1=1.0)
        fams.append(fam)
    return {"seed": draw(st.integers(0, 2**31 - 1)), **draw(blocks()),
            "dtype": draw(st.sampled_from(["float32", "float64"])),
            "estimator": draw(st.sampled_from(["brute", "conditional"])),
            "widths": draw(st.lists(st.integers(1, 500), min_size=1, max_size=3, unique=True)),
            "families": fams}  # fmt: skip


@st.composite
def depth_study(draw) -> dict:
    fams = []
    for name in draw(names):
        dim = draw(st.integers(1, 2))
        fams.append({
            "name": name, "activation": draw(st.sampled_from(["relu", "tanh", "erf", "linear"])),
            "input_dim": dim, "inputs": draw(inputs(dim, 1, 2)),
            "widths": draw(st.lists(st.integers(1, 64), min_size=1, max_size=2, unique=True)),
            "depths": draw(st.lists(st.integers(1, 8), min_size=1, max_size=2, unique=True)),
        })  # fmt: skip
    return {"seed": draw(st.integers(0, 100)), **draw(blocks()), "families": fams}


@st.composite
def learning_study(draw) -> dict:
    problems = []
    for name in draw(names):
        eig = draw(st.lists(st.floats(0.1, 5), min_size=1, max_size=3))
        record_every = draw(st.integers(1, 5))
        rate = draw(st.floats(0.01, 0.99)) * 2 / max(eig)
        problems.append({
            "name": name, "hessian_eigenvalues": eig, "learning_rates": [rate],
            "temperatures": [draw(st.floats(0.01, 2))], "initial": ["narrow"],
            "steps": record_every * draw(st.integers(1, 4)), "record_every": record_every,
        })  # fmt: skip
    study = {"seed": draw(st.integers(0, 100)), **draw(blocks()), "problems": problems}
    study["samples"] = min(study["block_size"], draw(st.integers(0, 50)))
    return study


@st.composite
def hidden_study(draw) -> dict:
    ensembles = []
    for name in draw(names):
        subsystems = draw(st.integers(1, 3))
        a = draw(st.floats(0.1, 0.9))
        ensembles.append({
            "name": name,
            "weights": draw(st.sampled_from(["cycle", "permutation", "symmetric", "orthogonal",
                                             "ginibre"])),
            "neurons": subsystems * draw(st.integers(2, 6)), "subsystems": subsystems,
            "contractions": [a], "gains": [draw(st.floats(0.1, 0.99)) / a],
            "noises": [draw(st.floats(0.01, 1))],
        })  # fmt: skip
    time_blocks = draw(st.integers(2, 5))
    return {"seed": draw(st.integers(0, 100)), **draw(blocks()), "ensembles": ensembles,
            "time_blocks": time_blocks, "steps": time_blocks * draw(st.integers(1, 20)),
            "burn_in": draw(st.integers(0, 10))}  # fmt: skip


STUDIES = {"npoint": npoint_study(), "depth": depth_study(), "learning": learning_study(),
           "hidden": hidden_study()}  # fmt: skip


@st.composite
def valid_configs(draw) -> dict:
    chosen = draw(st.lists(st.sampled_from(sorted(STUDIES)), min_size=1, max_size=4, unique=True))
    cfg = {"studies": {study: draw(STUDIES[study]) for study in chosen}}
    if draw(st.booleans()):
        cfg["device"] = draw(st.sampled_from(["cpu", "gpu"]))
    return cfg


@SETTINGS
@given(valid_configs())
def test_random_valid_configs_pass_and_expand(raw):
    cfg = config.validate(raw)
    points = config.expand(cfg)
    assert set(points) == set(raw["studies"])
    for specs in points.values():
        assert specs
        for name, spec in specs.items():
            assert spec.name == name and config.PointSpec.from_json(spec.to_json()) == spec
    assert config.validate(cfg) == cfg  # validation is idempotent


# --- schema-driven invalid configs ----------------------------------------------------------


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = {**SCHEMA["$defs"][schema["$ref"].split("/")[-1]],
                  **{k: v for k, v in schema.items() if k != "$ref"}}  # fmt: skip
    return schema


def _child_schema(schema: dict, key) -> dict | None:
    if isinstance(key, int):
        return _resolve(schema["items"]) if "items" in schema else None
    sub = schema.get("properties", {}).get(key)
    return None if sub is None else _resolve(sub)


def _breakages(schema: dict, value) -> Iterator[tuple[str, object, list]]:
    """(what, replacement, extra path) that break ``schema`` for a node holding ``value``."""
    if "enum" in schema:
        yield "not in enum", "not-a-choice", []
    if "oneOf" in schema or "anyOf" in schema:
        yield "matches no alternative", {"bogus": 1}, []
    kind = schema.get("type")
    if kind in ("integer", "number"):
        yield "wrong type", "seven", []
        if kind == "integer":
            yield "not an integer", 1.5, []
        if "minimum" in schema:
            yield "below minimum", schema["minimum"] - 1, []
        if "exclusiveMinimum" in schema:
            yield "at exclusive minimum", schema["exclusiveMinimum"], []
        if "maximum" in schema:
            yield "above maximum", schema["maximum"] + 1, []
        if "exclusiveMaximum" in schema:
            yield "at exclusive maximum", schema["exclusiveMaximum"], []
    if kind == "string":
        yield "wrong type", 3, []
        if "pattern" in schema:
            yield "bad pattern", "no spaces allowed", []
    if kind == "array":
        yield "wrong type", "a-string", []
        if schema.get("minItems", 0) >= 1:
            yield "too short", [], []
        if "maxItems" in schema and value:
            yield "too long", [value[0]] * (schema["maxItems"] + 1), []
        if schema.get("uniqueItems") and value:
            yield "repeated item", [value[0], value[0]], []
    if kind == "object":
        yield "wrong type", 5, []
        if schema.get("additionalProperties") is False:
            yield "unknown key", {**value, "bogus_key": 1}, ["bogus_key"]
        for key in schema.get("required", []):
            if key in value:
                yield "missing key", {k: v for k, v in value.items() if k != key}, [key]


def _mutations(value, schema: dict, path: list) -> Iterator[tuple[list, str, object, list]]:
    """Every (path, what, replacement, extra path) for the config tree under ``path``."""
    for what, replacement, extra in _breakages(schema, value):
        yield path, what, replacement, extra
    children = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else [])  # fmt: skip
    for key, child in children:
        sub = _child_schema(schema, key)
        if sub is not None:
            yield from _mutations(child, sub, [*path, key])


def _replace(cfg: dict, path: list, replacement) -> dict:
    cfg = copy.deepcopy(cfg)
    if not path:
        return replacement
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = replacement
    return cfg


@st.composite
def invalid_configs(draw) -> tuple[dict, str, str]:
    base = draw(valid_configs())
    mutations = list(_mutations(base, _resolve(SCHEMA), []))
    path, what, replacement, extra = draw(st.sampled_from(mutations))
    return _replace(base, path, replacement), config._key_path([*path, *extra]), what


@SETTINGS
@given(invalid_configs())
def test_random_invalid_configs_fail_naming_the_key(case):
    raw, key, what = case
    with pytest.raises(config.ConfigError) as info:
        config.validate(raw)
    assert str(info.value).startswith(f"config key '{key}'"), (what, str(info.value))


def test_mutations_cover_every_constraint_kind():
    """The generator above really breaks types, ranges, enums, lengths, required and unknown
    keys (guards the property test against silently testing nothing)."""
    raw = json.loads(json.dumps(config.load()))
    kinds = {what for _, what, _, _ in _mutations(raw, _resolve(SCHEMA), [])}
    assert {"wrong type", "not an integer", "below minimum", "at exclusive minimum",
            "above maximum", "not in enum", "too short", "repeated item", "unknown key",
            "missing key", "bad pattern", "matches no alternative"} <= kinds  # fmt: skip


# --- cross-field rules ----------------------------------------------------------------------


def _indivisible(study: dict) -> None:
    """An ensemble that is not a whole number of blocks (block_size 1 divides everything)."""
    study["block_size"] = max(2, study["block_size"])
    study["networks"] = study["block_size"] * 20 + 1


def _first(cfg, study, listing):
    return cfg["studies"][study][listing][0]


CROSS = {
    "npoint": [
        (lambda c: _indivisible(c["studies"]["npoint"]), "studies.npoint.networks"),
        (lambda c: c["studies"]["npoint"].update(networks=c["studies"]["npoint"]["block_size"] * 5)
         or None, "studies.npoint.block_size"),
        (lambda c: _first(c, "npoint", "families").update(inputs=[[3.0] * _first(
            c, "npoint", "families")["input_dim"]] * 2),
         "studies.npoint.analysis.couplings.cutoffs"),
        (lambda c: _first(c, "npoint", "families").update(
            inputs=[[0.1] * (_first(c, "npoint", "families")["input_dim"] + 1)] * 2),
         "studies.npoint.families[0].inputs[0]"),
        (lambda c: c["studies"]["npoint"].update(families=[_first(c, "npoint", "families")] * 2),
         "studies.npoint.families[1].name"),
        (lambda c: _first(c, "npoint", "families").update(arch="gauss", sigma_b0=30.0,
                                                          sigma_w0=1.0),
         "studies.npoint.families[0].sigma_b0"),
    ],
    "depth": [
        (lambda c: _first(c, "depth", "families").update(inputs=[[0.1, 0.2, 0.3]]),
         "studies.depth.families[0].inputs[0]"),
        (lambda c: _indivisible(c["studies"]["depth"]), "studies.depth.networks"),
    ],
    "learning": [
        (lambda c: _first(c, "learning", "problems").update(learning_rates=[
            2.5 / max(_first(c, "learning", "problems")["hessian_eigenvalues"])]),
         "studies.learning.problems[0].learning_rates[0]"),
        (lambda c: _first(c, "learning", "problems").update(steps=7, record_every=2),
         "studies.learning.problems[0].record_every"),
        (lambda c: c["studies"]["learning"].update(
            samples=c["studies"]["learning"]["block_size"] + 1), "studies.learning.samples"),
    ],
    "hidden": [
        (lambda c: _first(c, "hidden", "ensembles").update(gains=[
            1.5 / _first(c, "hidden", "ensembles")["contractions"][0]]),
         "studies.hidden.ensembles[0].gains[0]"),
        (lambda c: _first(c, "hidden", "ensembles").update(neurons=7, subsystems=2),
         "studies.hidden.ensembles[0].subsystems"),
        (lambda c: c["studies"]["hidden"].update(steps=c["studies"]["hidden"]["time_blocks"] + 1),
         "studies.hidden.time_blocks"),
    ],
}  # fmt: skip


@st.composite
def cross_field_breaks(draw) -> tuple[dict, str]:
    study = draw(st.sampled_from(sorted(CROSS)))
    raw = {"studies": {study: draw(STUDIES[study])}}
    edit, key = draw(st.sampled_from(CROSS[study]))
    edit(raw)
    return raw, key


@SETTINGS
@given(cross_field_breaks())
def test_random_cross_field_breaks_fail_naming_the_key(case):
    raw, key = case
    with pytest.raises(config.ConfigError) as info:
        config.validate(raw)
    assert str(info.value).startswith(f"config key '{key}'"), str(info.value)


def test_gauss_net_range_check_is_dtype_aware():
    raw = {"studies": {"npoint": {
        "seed": 1, "networks": 20000, "block_size": 1000, "widths": [10],
        "families": [{"name": "g", "arch": "gauss", "sigma_b0": 8.0, "inputs": [0.0, 0.01]}],
    }}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"sigma_b0'.*float32.*underflow.*float64"):
        config.validate(raw)
    raw["studies"]["npoint"]["dtype"] = "float64"
    config.validate(raw)  # k = 64 is representable in float64
    raw["studies"]["npoint"]["families"][0]["sigma_b0"] = 1.0
    raw["studies"]["npoint"]["dtype"] = "float32"
    config.validate(raw)
