"""The integration's strings follow Home Assistant's translation rules.

The rules are those hassfest applies to every translation value (home-assistant/core
``script/hassfest/translations.py``, ``validate_translation_value``): no HTML, placeholders
are plain identifiers (so nothing JSON-like in braces) and never in single quotes, no
combined references, no leading or trailing spaces, no URLs. hassfest does not run on a
custom integration, so this test holds the strings to the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
import string
from typing import Any

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "esp_mcp_bridge"

# The patterns as hassfest and config_validation.string_with_no_html define them.
RE_HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")
RE_COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
RE_URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def problems(value: Any) -> list[str]:
    """What hassfest would reject in one translation value (empty when it is fine)."""
    if not isinstance(value, str):
        return ["not a string"]
    found = []
    if RE_HTML.search(value):
        found.append("contains HTML")
    if RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(value):
        found.append("placeholder inside single quotes")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name]
    except ValueError as err:
        found.append(f"unbalanced braces ({err})")
    else:
        found.extend(f"placeholder {{{name}}} is not an identifier" for name in fields
                     if not name.isidentifier())  # fmt: skip
    if RE_COMBINED_REFERENCE.search(value):
        found.append("combined translation reference")
    if value != value.strip():
        found.append("leading or trailing spaces")
    if RE_URL.search(value):
        found.append("contains a URL")
    return found


def test_strings_follow_the_translation_rules() -> None:
    strings = _load(INTEGRATION / "strings.json")
    leaves = list(_leaves(strings))
    assert len(leaves) > 50  # the whole file was walked, not an empty one
    bad = {path: found for path, value in leaves if (found := problems(value))}
    assert bad == {}


def test_english_translation_is_strings_json() -> None:
    """HA loads translations/en.json at run time; strings.json is the source of it."""
    assert _load(INTEGRATION / "translations" / "en.json") == _load(INTEGRATION / "strings.json")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Devices publish on `<base>/<device>/capabilities`.", "contains HTML"),
        ('For example `{"url": "x"}`.', 'placeholder {"url"} is not an identifier'),
        ("Broken {brace", "unbalanced braces"),
        ("Device '{name}' is gone.", "placeholder inside single quotes"),
        ("See https://example.com/docs for more.", "contains a URL"),
        (" Padded", "leading or trailing spaces"),
        ("Prefix [%key:common::config_flow::data::host%]", "combined translation reference"),
    ],
)
def test_rules_catch_what_hassfest_rejects(value: str, problem: str) -> None:
    assert any(p.startswith(problem) for p in problems(value))


def test_rules_accept_plain_placeholders() -> None:
    assert problems("Device {device_id} did not answer within {timeout} s.") == []
    assert problems("[%key:common::config_flow::data::host%]") == []
