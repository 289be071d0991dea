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
            "window": {"$ref": "#/$defs/W"},
            "limit": {"default": 50, "maximum": 200, "type": "integer"},
        },
        "required": ["title"],
        "$defs": {"W": {"type": "object", "properties": {"s": {"type": "string"}}}},
    }


def test_input_schema_keeps_null() -> None:
    out = compact_schema(SCHEMA, drop_null=False)
    assert out["properties"]["value"]["type"] == ["boolean", "number", "null"]
    assert out["properties"]["window"]["anyOf"] == [{"$ref": "#/$defs/W"}, {"type": "null"}]
