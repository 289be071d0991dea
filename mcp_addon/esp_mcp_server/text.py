"""Text that comes from devices (names, descriptions, error messages), made safe to show an
agent: control and format characters removed, whitespace collapsed, cut to a length, and, in
the text summaries, quoted so it reads as data rather than as part of the server's words.

Anyone who can publish to the broker can set these strings; they must not be able to pass for
instructions, or flood an agent's context."""

from __future__ import annotations

import json
from typing import Any
import unicodedata

NAME_LIMIT = 64
TEXT_LIMIT = 200


def clean(value: Any, limit: int = TEXT_LIMIT) -> str:
    """`value` as one line of at most `limit` characters (an ellipsis marks a cut)."""
    text = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(value)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: Any, limit: int = NAME_LIMIT) -> str:
    """Cleaned and in double quotes (JSON string syntax), for text summaries."""
    return json.dumps(clean(value, limit), ensure_ascii=False)


def clean_tree(node: Any, limit: int = TEXT_LIMIT) -> Any:
    """Every string in a JSON-like structure cleaned (keys too); lists cut to 64 items."""
    if isinstance(node, str):
        return clean(node, limit)
    if isinstance(node, dict):
        return {clean(k, NAME_LIMIT): clean_tree(v, limit) for k, v in list(node.items())[:64]}
    if isinstance(node, list):
        return [clean_tree(v, limit) for v in node[:64]]
    return node
