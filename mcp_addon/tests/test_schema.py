"""Unit tests for the schema compaction of the tool list."""

from __future__ import annotations

from esp_mcp_server.schema import compact_schema

SCHEMA = {
    "title": "Out",
    "type": "object",
    "properties": {
        "title": {"title": "Title", "type": "string"},
        "value": {
            "anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "null"}],
            "default": None,
            "description": "v",
        },
        "window": {"anyOf": [{"$ref": "#/$defs/W"}, {"type": "null"}], "default": None},
        "limit": {"default": 50, "maximum": 200, "title": "Limit", "type": "integer"},
    },
    "required": ["title"],
    "$defs": {"W": {"title": "W", "type": "object", "properties": {"s": {"type": "string"}}}},
}


def test_output_schema_drops_titles_nulls_and_merges_types() -> None:
    out = compact_schema(SCHEMA, drop_null=True)
    assert out == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "value": {"type": ["boolean", "number"], "description": "v"},
            "window": {"type": "object", "properties": {"s": {"type": "string"}}},
            "limit": {"default": 50, "maximum": 200, "type": "integer"},
        },
        "required": ["title"],
    }


def test_input_schema_keeps_null() -> None:
    out = compact_schema(SCHEMA, drop_null=False)
    assert out["properties"]["value"]["type"] == ["boolean", "number", "null"]
    assert out["properties"]["window"]["anyOf"] == [
        {"type": "object", "properties": {"s": {"type": "string"}}},
        {"type": "null"},
    ]


def test_shared_definitions_kept_tuples_and_open_objects_shortened() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/W"},
            "b": {"type": "array", "items": {"$ref": "#/$defs/W"}},
            "pair": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "prefixItems": [{"type": "string"}, {"type": "number"}],
            },
            "extra": {"type": "object", "additionalProperties": True},
        },
        "$defs": {"W": {"type": "object", "properties": {"s": {"type": "string"}}}},
    }
    out = compact_schema(schema, drop_null=True)
    assert out["properties"]["a"] == {"$ref": "#/$defs/W"}
    assert out["$defs"] == schema["$defs"]
    assert out["properties"]["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "number"}],
    }
    assert out["properties"]["extra"] == {"type": "object"}
