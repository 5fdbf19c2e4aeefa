"""Markdown reference of every config key, generated from the JSON schema (config/schema.yaml).

    python -m nnfield.config_docs --write    # regenerate config/README.md
    python -m nnfield.config_docs --check    # exit 1 if config/README.md is out of date
    python -m nnfield.config_docs            # print it

:func:`render` walks the schema from its root: every object with properties becomes a section
(a table of its keys, by full dotted path, with ``[]`` for the items of a list), in schema order,
so the output depends on the schema alone.  It follows ``$ref`` (local JSON pointers, siblings of
a ``$ref`` overriding the target, as in draft 2020-12), ``oneOf``/``anyOf``/``allOf``, arrays of
objects, ``additionalProperties`` and ``patternProperties``, ``enum``, ``const``, numeric, length
and item-count bounds, and requirements made conditional by ``if``/``then``/``else``.  Like
loading the config, it never imports JAX.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGENERATE = "python -m nnfield.config_docs --write"
"""The command that regenerates config/README.md (named in the file and in test failures)."""

NONE = "-"
"""Table cell of a missing default."""

_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (type(None), "null"), (list, "array"), (dict, "object"))  # fmt: skip
_PLAIN_STRING = re.compile(r"^[A-Za-z][A-Za-z0-9_.~/+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


@dataclass(frozen=True)
class Key:
    """One documented key: a row of its section's table."""

    path: str
    type: str
    default: str
    allowed: str
    required: str
    description: str
    section: str | None = None  # the section that details it (objects, lists of objects)


@dataclass
class Section:
    """One object of the schema: its keys, in schema order."""

    path: str  # "" for the root
    level: int  # nesting depth in the contents (root 0)
    description: str
    notes: list[str] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"`{self.path}`" if self.path else "Top level"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _yaml(value: Any) -> str:
    """A value as it would be written in a YAML config (flow style)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, int | float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text  # YAML 1.1
    if isinstance(value, str):
        plain = _PLAIN_STRING.match(value) and value.lower() not in _YAML_WORDS
        return value if plain else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _code(value: Any) -> str:
    return f"`{_yaml(value)}`"


def _json_type(value: Any) -> str:
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _text(description: Any) -> str:
    """A description on one line (YAML folded and literal blocks alike)."""
    return " ".join(str(description).split()) if description is not None else ""


def _sentence(text: str) -> str:
    return text if not text or text.endswith((".", "!", "?", ":")) else text + "."


def _inline(text: str) -> str:
    """Schema text as Markdown that shows it literally: code spans are kept, and outside them
    the characters that could start emphasis, strikethrough, HTML or an escape are escaped
    where they could act (``C_W`` and ``W ~ N(0, 1)`` stay as they are)."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2:  # a code span
            out.append(part)
            continue
        chars = []
        for j, ch in enumerate(part):
            before = part[j - 1] if j else " "
            after = part[j + 1] if j + 1 < len(part) else " "
            if ch == "\\" or ch == "`":
                chars.append("\\" + ch)
            elif ch in "*~" and not (before.isspace() and after.isspace()):
                chars.append("\\" + ch)
            elif ch == "_" and not (before.isalnum() and after.isalnum()):
                chars.append("\\_")
            elif ch == "<" and (after.isalpha() or after in "/!?"):
                chars.append("\\<")
            else:
                chars.append(ch)
        out.append("".join(chars))
    return "".join(out)


def _cell(text: str) -> str:
    """Text for a table cell: one line, with every ``|`` escaped (code spans included)."""
    return " ".join(text.split()).replace("|", "\\|")


def slug(title: str) -> str:
    """GitHub's anchor of a heading: its text, lower case, without punctuation but ``-`` and
    ``_``, spaces made hyphens."""
    text = title.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


class _Walker:
    """Walks a schema from its root and collects its sections."""

    def __init__(self, root: dict):
        if not isinstance(root, dict):
            raise TypeError(f"a schema is a mapping, got {type(root).__name__}")
        self.root = root
        self.sections: list[Section] = []

    # --- schema access ------------------------------------------------------------------

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ValueError(f"$ref {ref!r} points nowhere")
        return node

    def resolve(self, node: Any) -> tuple[dict, tuple[str, ...]]:
        """A subschema with its $ref chain merged in (siblings of a $ref win), and the refs."""
        if node is True or node is None:
            return {}, ()
        if node is False:
            return {"not": {}}, ()
        refs: list[str] = []
        while "$ref" in node:
            ref = node["$ref"]
            if ref in refs:
                raise ValueError(f"$ref cycle: {' -> '.join([*refs, ref])}")
            refs.append(ref)
            target = self.lookup(ref)
            target = target if isinstance(target, dict) else {}
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node, tuple(refs)

    def node(self, node: Any) -> dict:
        return self.resolve(node)[0]

    def alternatives(self, node: dict) -> list[dict]:
        """``node`` and, recursively, the branches of its oneOf, anyOf and allOf."""
        out = [node]
        for keyword in ("allOf", "anyOf", "oneOf"):
            for branch in node.get(keyword, []):
                out += self.alternatives(self.node(branch))
        return out

    # --- one key ------------------------------------------------------------------------

    def type_text(self, node: Any) -> str:
        node = self.node(node)
        if "const" in node:
            return _json_type(node["const"])
        if "enum" in node:
            return " or ".join(_unique(_json_type(v) for v in node["enum"]))
        branches = node.get("oneOf") or node.get("anyOf")
        if branches:
            return " or ".join(_unique(self.type_text(b) for b in branches))
        kind = node.get("type")
        if kind is None:
            if "properties" in node or "additionalProperties" in node:
                kind = "object"
            elif "items" in node or "prefixItems" in node:
                kind = "array"
            else:
                return "any"
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array" and isinstance(node.get("items"), dict):
            inner = self.type_text(node["items"])
            return f"array of ({inner})" if " or " in inner else f"array of {inner}"
        if kind == "object" and isinstance(node.get("additionalProperties"), dict):
            if not node.get("properties"):
                return f"mapping of string to {self.type_text(node['additionalProperties'])}"
        return kind

    def allowed_text(self, node: Any) -> str:
        """Allowed values and bounds of a subschema, ``; ``-separated ('' if any value)."""
        node = self.node(node)
        parts = []
        if "const" in node:
            parts.append(f"exactly {_code(node['const'])}")
        if "enum" in node:
            parts.append("one of " + ", ".join(_code(v) for v in node["enum"]))
        parts += _bounds(node)
        for keyword in ("oneOf", "anyOf"):
            if keyword in node:
                options = []
                for branch in node[keyword]:
                    kind, allowed = self.type_text(branch), self.allowed_text(branch)
                    options.append(f"{kind} ({allowed})" if allowed else kind)
                joined = ", or ".join(options)
                parts.append(f"{'exactly one' if keyword == 'oneOf' else 'any'} of: {joined}")
        for branch in node.get("allOf", []):
            allowed = self.allowed_text(branch)
            if allowed and self.node(branch).get("properties") is None:
                parts.append(allowed)
        if isinstance(node.get("items"), dict):
            inner = self.allowed_text(node["items"])
            if inner:
                parts.append(f"each item: {inner}")
        if "not" in node:
            parts.append(f"not {json.dumps(node['not'], sort_keys=True)}")
        return "; ".join(_unique(parts))

    # --- sections -----------------------------------------------------------------------

    def condition(self, cond: Any) -> str:
        """Words for the ``if`` of a conditional subschema."""
        cond = self.node(cond)
        props = cond.get("properties", {})
        parts = []
        for name, sub in props.items():
            sub = self.node(sub)
            if "const" in sub:
                parts.append(f"`{name}` is {_code(sub['const'])}")
            elif "enum" in sub:
                parts.append(f"`{name}` is one of " + ", ".join(_code(v) for v in sub["enum"]))
            else:
                parts.append(f"`{name}` matches `{json.dumps(sub, sort_keys=True)}`")
        parts += [f"`{name}` is given" for name in cond.get("required", []) if name not in props]
        rest = {k: v for k, v in cond.items() if k not in ("properties", "required")}
        if rest or not parts:
            parts.append(f"the item matches `{json.dumps(rest, sort_keys=True)}`")
        return " and ".join(parts)

    def requirements(self, objects: Sequence[dict]) -> tuple[dict[str, list[str]], list[str]]:
        """(key -> conditions under which it is required ('' always), notes) of an object."""
        required: dict[str, list[str]] = {}
        notes: list[str] = []
        for obj in objects:
            for name in obj.get("required", []):
                required.setdefault(name, []).append("")
            if "if" not in obj:
                continue
            words = self.condition(obj["if"])
            for keyword, prefix in (("then", "if"), ("else", "unless")):
                if keyword not in obj:
                    continue
                branch = self.node(obj[keyword])
                for name in branch.get("required", []):
                    required.setdefault(name, []).append(f"{prefix} {words}")
                rest = {k: v for k, v in branch.items() if k not in ("required", "description")}
                if rest:
                    notes.append(f"{prefix.capitalize()} {words}, the item must also match "
                                 f"`{json.dumps(rest, sort_keys=True)}`.")  # fmt: skip
        return required, notes

    def visit(self, node: Any, path: str, level: int, refs: tuple[str, ...] = ()) -> None:
        """Add the sections of the objects and lists of objects found at ``path``."""
        node, own = self.resolve(node)
        if set(own) & set(refs):
            return  # recursive schema: documented where it first appears
        refs = refs + own
        alternatives = self.alternatives(node)
        if any(_is_object(alt) for alt in alternatives):
            self.object_section(node, alternatives, path, level, refs)
        for alt in alternatives:
            if isinstance(alt.get("items"), dict):
                self.visit(alt["items"], f"{path}[]", level, refs)

    def object_section(self, node: dict, alternatives: list[dict], path: str, level: int,
                       refs: tuple[str, ...]) -> None:  # fmt: skip
        section = Section(path, level, _text(node.get("description")))
        self.sections.append(section)
        required, section.notes = self.requirements(alternatives)
        children: dict[str, Any] = {}
        for alt in alternatives:
            for name, sub in alt.get("properties", {}).items():
                children.setdefault(_child(path, name), (name, sub))
            for pattern, sub in alt.get("patternProperties", {}).items():
                children.setdefault(_child(path, "<key>"), (f"/{pattern}/", sub))
            extra = alt.get("additionalProperties")
            if isinstance(extra, dict):
                children.setdefault(_child(path, "<key>"), ("*", extra))
        open_keys = not any(alt.get("additionalProperties") is False for alt in alternatives)
        if open_keys and not children.get(_child(path, "<key>")):
            section.notes.append("Keys not listed here are also accepted (and not checked).")
        for child_path, (name, sub) in children.items():
            section.keys.append(self.key(child_path, name, sub, required.get(name, [])))
        for child_path, (_, sub) in children.items():
            self.visit(sub, child_path, level + 1, refs)

    def key(self, path: str, name: str, sub: Any, required: list[str]) -> Key:
        node, _ = self.resolve(sub)
        alternatives = self.alternatives(node)
        allowed = self.allowed_text(node)
        if name.startswith("/"):
            allowed = "; ".join(_unique([f"key matches `{name[1:-1]}`", allowed]))
        if any(_is_object(alt) for alt in alternatives):
            detail: str | None = path
        else:
            detail = self.item_section(alternatives, path)
        return Key(
            path=path,
            type=self.type_text(node),
            default=_code(node["default"]) if "default" in node else NONE,
            allowed=allowed,
            required="yes" if "" in required else "; ".join(required) or "no",
            description=_text(node.get("description")),
            section=detail,
        )

    def item_section(self, alternatives: list[dict], path: str) -> str | None:
        """The section of the objects in a list (of lists ...) at ``path``, if any."""
        for alt in alternatives:
            if isinstance(alt.get("items"), dict):
                items = self.alternatives(self.node(alt["items"]))
                if any(_is_object(item) for item in items):
                    return f"{path}[]"
                found = self.item_section(items, f"{path}[]")
                if found:
                    return found
        return None


def _is_object(node: dict) -> bool:
    """Whether a (resolved) subschema describes a mapping with documented keys."""
    return bool(node.get("properties") or node.get("patternProperties")
                or isinstance(node.get("additionalProperties"), dict))  # fmt: skip


def _bounds(node: dict) -> list[str]:
    """Numeric, length, item-count and key-count bounds of one subschema."""
    parts = []
    low = ("<=", node["minimum"]) if "minimum" in node else None
    if "exclusiveMinimum" in node:
        low = ("<", node["exclusiveMinimum"])
    high = ("<=", node["maximum"]) if "maximum" in node else None
    if "exclusiveMaximum" in node:
        high = ("<", node["exclusiveMaximum"])
    if low and high:
        parts.append(f"{_yaml(low[1])} {low[0]} value {high[0]} {_yaml(high[1])}")
    elif low:
        parts.append(f"value {'>=' if low[0] == '<=' else '>'} {_yaml(low[1])}")
    elif high:
        parts.append(f"value {high[0]} {_yaml(high[1])}")
    if "multipleOf" in node:
        parts.append(f"a multiple of {_yaml(node['multipleOf'])}")
    for lo, hi, unit in (("minLength", "maxLength", "character"), ("minItems", "maxItems", "item"),
                         ("minProperties", "maxProperties", "key")):  # fmt: skip
        parts += _count(node.get(lo), node.get(hi), unit)
    if node.get("uniqueItems"):
        parts.append("no duplicates")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "format" in node:
        parts.append(f"format {node['format']}")
    return parts


def _count(low: int | None, high: int | None, unit: str) -> list[str]:
    def plural(n):
        return f"{n} {unit}" + ("" if n == 1 else "s")

    if low and high is not None:
        return [f"exactly {plural(low)}" if low == high else f"{low} to {plural(high)}"]
    if low:
        return [f"at least {plural(low)}"]
    if high is not None:
        return [f"at most {plural(high)}"]
    return []


def sections(schema: dict) -> list[Section]:
    """The schema's objects, root first, each followed by those nested in it."""
    walker = _Walker(schema)
    walker.visit(schema, "", 0)
    if not walker.sections:
        walker.sections.append(Section("", 0, _text(schema.get("description"))))
    return walker.sections


def keys(schema: dict) -> list[Key]:
    """Every documented key of the schema, in the order of :func:`render`."""
    return [key for section in sections(schema) for key in section.keys]


def render(schema: dict) -> str:
    """Markdown describing every key of ``schema`` (deterministic: the same schema gives the
    same bytes)."""
    found = sections(schema)
    anchors: dict[str, str] = {}
    used: dict[str, int] = {}
    for section in found:
        base = slug(section.title)
        n = used.get(base, 0)
        used[base] = n + 1
        anchors[section.path] = base if n == 0 else f"{base}-{n}"
    title = _text(schema.get("title")) or "Configuration"
    lines = [
        f"# {_inline(title)}: every key",
        "",
        "<!-- Generated from config/schema.yaml by nnfield.config_docs: do not edit by hand. -->",
        "",
        "This file is generated from [`schema.yaml`](schema.yaml); do not edit it by hand.  After "
        f"changing the schema, regenerate it with `{REGENERATE}` "
        "(tests/test_config_docs.py fails while it is out of date).",
        "",
    ]
    root = found[0]
    if root.description:
        lines += [_inline(root.description), ""]
    lines += [
        "Keys are named by their full dotted path; `[]` stands for every item of a list, so "
        "`a.b[].c` is key `c` of each item of the list `a.b`.  Beyond these per-key rules, "
        "each study's `sweep.check` (nnfield.studies.<name>.sweep) checks rules that join "
        "keys (for example `networks` a multiple of "
        "`block_size`) and the estimated cost of every point against `limits`; every error "
        "names its key.  A file given "
        "with `--configfile` is merged into config/config.yaml (mappings combine, lists and other "
        "values are replaced); `nnfield check-config FILE` validates the result without running "
        "anything.",
        "",
        "## Contents",
        "",
    ]
    for section in found:
        indent = "  " * section.level
        lines.append(f"{indent}- [{section.title}](#{anchors[section.path]})")
    for section in found:
        lines += ["", f"## {section.title}", ""]
        if section.path and section.description:
            lines += [_inline(_sentence(section.description)), ""]
        lines += [_inline(note) for note in section.notes]
        if section.notes:
            lines.append("")
        if not section.keys:
            lines.append("No keys.")
            continue
        lines += [
            "| Key | Type | Default | Allowed values | Required | Description |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key in section.keys:
            description = _inline(_sentence(key.description))
            if key.section in anchors and key.section != section.path:
                link = f"See [`{key.section}`](#{anchors[key.section]})."
                description = f"{description} {link}" if description else link
            cells = [f"`{key.path}`", key.type, key.default, key.allowed or "any",
                     key.required, description]  # fmt: skip
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def readme_path(schema_path: str | Path | None = None) -> Path:
    """config/README.md beside the schema (the checkout's, else ./config/schema.yaml's)."""
    from nnfield.config import SCHEMA_PATH

    path = Path(schema_path) if schema_path is not None else SCHEMA_PATH
    if schema_path is None and not path.exists() and Path("config/schema.yaml").exists():
        path = Path("config/schema.yaml")
    return path.parent / "README.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nnfield.config_docs",
        description="Print (or write, or check) the Markdown reference of every config key, "
        "config/README.md, generated from config/schema.yaml.",
    )
    parser.add_argument(
        "--schema",
        metavar="PATH",
        default=None,
        help="the JSON schema (default: the checkout's config/schema.yaml)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--write",
        action="store_true",
        help="write README.md beside the schema instead of printing it",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if README.md beside the schema is not what would be written",
    )
    args = parser.parse_args(argv)

    from nnfield.config import SCHEMA_PATH, ConfigError, load_schema

    try:
        text = render(load_schema(args.schema if args.schema is not None else SCHEMA_PATH))
    except (ConfigError, ValueError, TypeError) as err:
        print(f"config_docs: {err}", file=sys.stderr)
        return 2
    target = readme_path(args.schema)
    if args.check:
        try:
            current = target.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            print(f"{target} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if args.write:
        from nnfield.engine.atomic import write_text_if_changed

        changed = write_text_if_changed(target, text)
        print(f"{target}: {'written' if changed else 'up to date'}", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
