"""HTTP transport: bearer token checked against Home Assistant, Origin check, token cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

from addon_clients import SERVER_TOKEN, USER_TOKEN, post_initialize
from addon_fakes import FakeHomeAssistant
import pytest


async def test_no_token_is_401(http_url: str) -> None:
    response = await post_initialize(http_url)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer realm=")


async def test_wrong_token_is_401(http_url: str) -> None:
    response = await post_initialize(http_url, Authorization="Bearer not-a-token")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_valid_token_is_200(http_url: str) -> None:
    response = await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}")
    assert response.status_code == 200
    assert "esp-mcp-bridge" in response.text


async def test_valid_token_cached(http_url: str, fake_ha: FakeHomeAssistant) -> None:
    first = await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}")
    checks = fake_ha.token_checks
    second = await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}")
    assert (first.status_code, second.status_code) == (200, 200)
    assert fake_ha.token_checks == checks


async def test_wrong_token_not_cached(http_url: str, fake_ha: FakeHomeAssistant) -> None:
    await post_initialize(http_url, Authorization="Bearer nope")
    checks = fake_ha.token_checks
    again = await post_initialize(http_url, Authorization="Bearer nope")
    assert again.status_code == 401
    assert fake_ha.token_checks == checks + 1


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://evil.example", 403),
        ("https://homeassistant.attacker.net:8123", 403),
        ("http://localhost:3000", 200),
        ("http://127.0.0.1:6274", 200),
        ("https://allowed.example", 200),
        ("https://allowed.example.evil.net", 403),
    ],
)
async def test_origin_check(http_url: str, origin: str, status: int) -> None:
    response = await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}", Origin=origin)
    assert response.status_code == status


async def test_origin_checked_before_token(http_url: str, fake_ha: FakeHomeAssistant) -> None:
    checks = fake_ha.token_checks
    response = await post_initialize(
        http_url, Authorization="Bearer whatever", Origin="http://evil.example"
    )
    assert response.status_code == 403
    assert fake_ha.token_checks == checks


async def test_no_secret_in_the_log(http_url: str, http_log: Path) -> None:
    """The server runs with LOG_LEVEL=DEBUG; no token may appear in what it wrote."""
    await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}")
    await post_initialize(http_url, Authorization="Bearer wrong-token-xyz")
    log = await asyncio.to_thread(http_log.read_text)
    assert "starting (http transport)" in log
    for secret in (USER_TOKEN, SERVER_TOKEN, "wrong-token-xyz"):
        assert secret not in log
