"""config/README.md documents every config key, is generated from the schema, and is in sync."""

from __future__ import annotations

import copy
import difflib
import re
import shutil

import pytest
import yaml

from nnfield import config, config_docs

SCHEMA = config.load_schema()
README = config.SCHEMA_PATH.parent / "README.md"
CONFIG_FILES = sorted(config.SCHEMA_PATH.parent.glob("*.yaml"))
CONFIG_FILES = [path for path in CONFIG_FILES if path.name != "schema.yaml"]
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \|")


def _lookup(ref: str) -> dict:
    node = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = {**_lookup(node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _schema_keys(node: dict, path: str = ""):
    """(dotted path, resolved subschema) of every property reachable from ``node``: through
    properties, list items ([]), $ref and oneOf/anyOf/allOf (independent of config_docs)."""
    node = _resolve(node)
    for name, sub in node.get("properties", {}).items():
        child = f"{path}.{name}" if path else name
        yield child, _resolve(sub)
        yield from _schema_keys(sub, child)
    if isinstance(node.get("items"), dict):
        yield from _schema_keys(node["items"], f"{path}[]")
    for keyword in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(keyword, []):
            yield from _schema_keys(branch, path)


def _rows(text: str) -> dict[str, list[str]]:
    """Documented key -> the cells of its table row."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            assert match["key"] not in rows, f"{match['key']} is documented twice"
            rows[match["key"]] = cells
    return rows


def _config_keys(value, path: str = ""):
    """Dotted paths (lists as []) of every mapping key in a loaded config."""
    if isinstance(value, dict):
        for name, item in value.items():
            child = f"{path}.{name}" if path else str(name)
            yield child
            yield from _config_keys(item, child)
    elif isinstance(value, list):
        for item in value:
            yield from _config_keys(item, f"{path}[]")


RENDERED = config_docs.render(SCHEMA)
SCHEMA_KEYS = dict(_schema_keys(SCHEMA))


def test_readme_is_generated_from_the_schema():
    """config/README.md is exactly what the schema renders to."""
    stale = (
        f"config/README.md is out of date with config/schema.yaml: run `{config_docs.REGENERATE}`"
    )
    assert README.is_file(), stale
    current = README.read_text(encoding="utf-8")
    if current != RENDERED:
        diff = difflib.unified_diff(
            current.splitlines(),
            RENDERED.splitlines(),
            "config/README.md",
            "rendered from config/schema.yaml",
            lineterm="",
            n=1,
        )
        pytest.fail(stale + "\n" + "\n".join(list(diff)[:40]))


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["properties"]["batching"]["properties"]["seconds"].update(description="X."),
        lambda s: s["properties"]["batching"]["properties"]["seconds"].update(default=7),
        lambda s: s["$defs"]["sigma"].update(maximum=999),
        lambda s: s["$defs"]["family"]["properties"]["arch"]["enum"].append("tanh"),
        lambda s: s["$defs"]["family"]["required"].remove("arch"),
        lambda s: s["$defs"]["depth"]["properties"].update(new_key={"type": "integer"}),
    ],
    ids=["description", "default", "range", "enum", "required", "new-key"],
)
def test_a_changed_schema_renders_differently(change):
    """The sync test can fail: every kind of schema edit changes the rendered text."""
    schema = copy.deepcopy(SCHEMA)
    change(schema)
    assert config_docs.render(schema) != RENDERED
    assert config_docs.render(copy.deepcopy(SCHEMA)) == RENDERED  # deterministic


def test_check_and_write(tmp_path, capsys):
    """--check fails on a stale README (naming the command) and passes once --write ran."""
    schema_path = tmp_path / "schema.yaml"
    shutil.copy(config.SCHEMA_PATH, schema_path)
    args = ["--schema", str(schema_path)]
    assert config_docs.main([*args, "--check"]) == 1  # no README yet
    assert config_docs.main([*args, "--write"]) == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == RENDERED
    assert config_docs.main([*args, "--check"]) == 0
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["device"]["description"] = "Somewhere else."
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    capsys.readouterr()
    assert config_docs.main([*args, "--check"]) == 1
    assert config_docs.REGENERATE in capsys.readouterr().err
    assert config_docs.main(args) == 0
    assert "Somewhere else." in capsys.readouterr().out


def test_every_schema_key_is_documented_with_a_description():
    rows = _rows(RENDERED)
    assert len(SCHEMA_KEYS) > 100
    assert set(rows) == set(SCHEMA_KEYS), (
        f"undocumented: {sorted(set(SCHEMA_KEYS) - set(rows))}; "
        f"not in the schema: {sorted(set(rows) - set(SCHEMA_KEYS))}"
    )
    missing = [
        path for path, sub in SCHEMA_KEYS.items() if not str(sub.get("description", "")).strip()
    ]
    assert not missing, f"keys without a description in config/schema.yaml: {missing}"
    for path, cells in rows.items():
        assert len(cells) == 6, f"{path}: the row has {len(cells)} cells (an unescaped |?)"
        assert cells[-1], f"{path}: empty description"


def test_rows_state_type_default_range_and_requirement():
    rows = _rows(RENDERED)
    assert rows["studies.npoint.families[].sigma_b0"][1:5] == [
        "number",
        "`1.0`",
        "0 <= value <= 1000",
        "no",
    ]
    assert rows["studies.npoint.seed"][1:5] == ["integer", "-", "0 <= value <= 2147483647", "yes"]
    assert rows["device"][3] == "one of `cpu`, `gpu`"
    assert rows["studies.learning.problems[].barrier"][4] == "if `kind` is `barrier`"
    assert rows["studies.learning.problems[].hessian_eigenvalues"][4] == (
        "unless `kind` is `teacher_student`"
    )
    assert rows["studies.learning.problems[].optimizer"][1] == "string or array of string"
    assert rows["studies.npoint.families[].inputs"][1] == "array of (number or array of number)"
    assert "(#studiesnpointfamilies)" in rows["studies.npoint.families"][-1]


def test_links_point_at_headings():
    headings = [line[3:] for line in RENDERED.splitlines() if line.startswith("## ")]
    anchors = {config_docs.slug(title) for title in headings}
    assert len(anchors) == len(headings)
    for target in re.findall(r"\]\(#([^)]*)\)", RENDERED):
        assert target in anchors, target


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_key_of_the_shipped_configs_is_documented(path):
    """Every key written in config/*.yaml, and every key validation fills in, is documented."""
    raw = config.read_yaml(path)
    documented = set(_rows(RENDERED))
    for key in _config_keys(raw):
        assert f"`{key}`" in RENDERED and key in documented, f"{path.name}: {key} is undocumented"
    if path == config.DEFAULT_CONFIG_PATH:
        for key in _config_keys(config.validate(raw)):
            assert key in documented, f"{key} (filled in by validation) is undocumented"


def test_renders_other_schema_features():
    """const, anyOf, additionalProperties and patternProperties schemas, nested lists of
    objects, conditional requirements and recursive $refs."""
    node = {
        "type": "object",
        "description": "A node.",
        "properties": {
            "child": {"$ref": "#/$defs/node", "description": "Child."},
            "w": {"type": "number", "default": 1e-5, "description": "w|x a*b"},
        },
    }
    schema = {
        "type": "object",
        "properties": {
            "mode": {"const": "fast", "description": "Fixed."},
            "level": {
                "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
                "description": "Level.",
            },
            "tags": {
                "type": "object",
                "description": "Tags.",
                "additionalProperties": {"type": "string", "maxLength": 3, "description": "A tag."},
            },
            "nodes": {
                "type": "object",
                "additionalProperties": False,
                "description": "Nodes.",
                "patternProperties": {"^x": {"$ref": "#/$defs/node"}},
            },
            "tree": {"$ref": "#/$defs/node", "description": "A tree."},
            "grid": {
                "type": "array",
                "description": "Rows.",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "v": {"type": "number", "multipleOf": 0.5, "description": "V."}
                        },
                    },
                },
            },
            "kind": {"enum": ["a", "b"], "description": "Kind."},
            "extra": {"type": "string", "description": "For b."},
        },
        "if": {"properties": {"kind": {"const": "b"}}, "required": ["kind"]},
        "then": {"required": ["extra"]},
        "$defs": {"node": node},
    }
    rows = _rows(config_docs.render(schema))
    assert rows["mode"][3] == "exactly `fast`"
    assert rows["level"][1:4] == ["integer or null", "-", "any of: integer (value >= 1), or null"]
    assert rows["tags"][1] == "mapping of string to string"
    assert rows["tags.<key>"][3] == "at most 3 characters"
    assert rows["nodes.<key>"][3] == "key matches `^x`"
    assert rows["nodes.<key>.w"][2:] == ["`1.0e-05`", "any", "no", r"w\|x a\*b."]
    assert rows["tree.child"][-1].startswith("Child.")
    assert rows["grid"][1] == "array of array of object"
    assert "(#grid)" in rows["grid"][-1]
    assert rows["grid[][].v"][3] == "a multiple of 0.5"
    assert rows["extra"][4] == "if `kind` is `b`"
