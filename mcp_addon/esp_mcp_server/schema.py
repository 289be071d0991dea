"""Shorter JSON schemas for the tool list (an LLM reads them on every conversation).

Drops pydantic's generated titles, ``default: null`` and ``additionalProperties: true``, the
lengths of fixed tuples, writes definitions used once in place, and writes ``anyOf`` of plain
types as one ``type`` list. Output schemas also drop ``null`` (structured content never carries
nulls: empty fields are left out); input schemas keep it, so a client may still send null.
"""

from __future__ import annotations

from typing import Any

_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")


def compact_schema(schema: dict[str, Any], *, drop_null: bool) -> dict[str, Any]:
    result = _compact(_inline_single_use(schema), drop_null)
    assert isinstance(result, dict)
    return result


def _refs(node: Any, counts: dict[str, int]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            counts[ref[8:]] = counts.get(ref[8:], 0) + 1
        for value in node.values():
            _refs(value, counts)
    elif isinstance(node, list):
        for item in node:
            _refs(item, counts)


def _inline_single_use(schema: dict[str, Any]) -> dict[str, Any]:
    """Definitions used once are written where they are used (no `$ref`, no name)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    counts: dict[str, int] = {}
    _refs(schema, counts)
    once = {name for name, n in counts.items() if n == 1 and name in defs}
    if not once:
        return schema

    def replace(node: Any) -> Any:
        if isinstance(node, list):
            return [replace(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref[8:] in once and ref.startswith("#/$defs/"):
            rest = {k: replace(v) for k, v in node.items() if k != "$ref"}
            return {**replace(defs[ref[8:]]), **rest}
        return {k: replace(v) for k, v in node.items()}

    out = {k: replace(v) for k, v in schema.items() if k != "$defs"}
    kept = {name: replace(d) for name, d in defs.items() if name not in once}
    if kept:
        out["$defs"] = kept
    return out


def _compact(node: Any, drop_null: bool) -> Any:
    if isinstance(node, list):
        return [_compact(item, drop_null) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key == "additionalProperties" and value is True:  # the default
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _compact(sub, drop_null) for name, sub in value.items()}
        else:
            out[key] = _compact(value, drop_null)
    prefix = out.get("prefixItems")
    if isinstance(prefix, list) and out.get("minItems") == out.get("maxItems") == len(prefix):
        # a fixed-length tuple: prefixItems already says how many
        out.pop("minItems")
        out.pop("maxItems")
    variants = out.get("anyOf")
    if isinstance(variants, list):
        if drop_null:
            variants = [v for v in variants if v != {"type": "null"}]
        if all(isinstance(v, dict) and set(v) == {"type"} for v in variants):
            types: list[Any] = []
            for variant in variants:
                kind = variant["type"]
                types += kind if isinstance(kind, list) else [kind]
            del out["anyOf"]
            out = {"type": types[0] if len(types) == 1 else types, **out}
        elif len(variants) == 1:
            del out["anyOf"]
            out = {**variants[0], **out}
        else:
            out["anyOf"] = variants
    return out
