"""quality_scale.yaml answers every rule of Home Assistant's Integration Quality Scale.

hassfest checks this file for core integrations only; this test does the same for ours and
holds the claims that can be checked from the files (code owner, brand images) to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image
import pytest
import yaml

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "esp_mcp_bridge"

# The rule list of home-assistant/core script/hassfest/quality_scale.py (ALL_RULES) at
# commit 008538e822535b1d6155c91f6642127afa184ed1, the same as the developer documentation's
# docs/core/integration-quality-scale/_includes/tiers.json (docs-triggers and docs-conditions
# were added in July 2026). A rule added later makes test_every_rule_is_answered fail until
# this list and quality_scale.yaml both have it.
RULES: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = [rule for tier in RULES.values() for rule in tier]
# Tiers this integration claims: every rule of them must be done or exempt.
CLAIMED_TIERS = ("bronze", "silver", "gold")


def _rules() -> dict[str, dict[str, Any]]:
    """Each rule as {"status": ..., "comment": ...} (hassfest allows a bare status too)."""
    data = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8"))
    rules: dict[str, Any] = data["rules"]
    return {
        name: value if isinstance(value, dict) else {"status": value}
        for name, value in rules.items()
    }


def test_every_rule_is_answered() -> None:
    assert len(ALL_RULES) == len(set(ALL_RULES)) == 54
    rules = _rules()
    assert sorted(set(ALL_RULES) - set(rules)) == []  # missing rules
    assert sorted(set(rules) - set(ALL_RULES)) == []  # rules that do not exist


@pytest.mark.parametrize("rule", ALL_RULES)
def test_status_is_known_and_exemptions_say_why(rule: str) -> None:
    answer = _rules()[rule]
    assert answer["status"] in ("done", "exempt", "todo")
    if answer["status"] in ("exempt", "todo"):
        assert len(str(answer.get("comment", "")).strip()) > 10, f"{rule} needs a reason"


@pytest.mark.parametrize("rule", [r for tier in CLAIMED_TIERS for r in RULES[tier]])
def test_claimed_tiers_are_complete(rule: str) -> None:
    assert _rules()[rule]["status"] in ("done", "exempt")


def test_integration_owner_is_set() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    owners = manifest["codeowners"]
    assert owners
    assert all(owner.startswith("@") and len(owner) > 1 for owner in owners)


def test_conditions_exemption_holds() -> None:
    """docs-conditions is exempt because there is no condition platform to document."""
    assert _rules()["docs-conditions"]["status"] == "exempt"
    assert not (INTEGRATION / "device_condition.py").exists()
    assert not (INTEGRATION / "condition.py").exists()


# Sizes from the home-assistant/brands README (HA serves the same names from brand/).
@pytest.mark.parametrize(
    ("name", "shortest", "square"),
    [
        ("icon.png", (256, 256), True),
        ("icon@2x.png", (512, 512), True),
        ("logo.png", (128, 256), False),
        ("logo@2x.png", (256, 512), False),
        ("dark_logo.png", (128, 256), False),
        ("dark_logo@2x.png", (256, 512), False),
    ],
)
def test_brand_images(name: str, shortest: tuple[int, int], square: bool) -> None:
    assert _rules()["brands"]["status"] == "done"
    with Image.open(INTEGRATION / "brand" / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"  # transparent background
        width, height = image.size
        if square:
            assert width == height
        else:
            assert width >= height  # a landscape logo
        assert shortest[0] <= min(width, height) <= shortest[1]
        # Trimmed: the artwork reaches the edges of the shortest side.
        bbox = image.getbbox()
        assert bbox is not None
        if not square:
            assert bbox == (0, 0, width, height)
