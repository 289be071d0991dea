"""Shorter JSON schemas for the tool list (an LLM reads them on every conversation).

Drops pydantic's generated titles and ``default: null``, and writes ``anyOf`` of plain types as
one ``type`` list. Output schemas also drop ``null`` (structured content never carries nulls:
empty fields are left out); input schemas keep it, so a client may still send null.
"""

from __future__ import annotations

from typing import Any

_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")


def compact_schema(schema: dict[str, Any], *, drop_null: bool) -> dict[str, Any]:
    result = _compact(schema, drop_null)
    assert isinstance(result, dict)
    return result


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
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _compact(sub, drop_null) for name, sub in value.items()}
        else:
            out[key] = _compact(value, drop_null)
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
