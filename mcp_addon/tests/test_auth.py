"""HTTP transport: bearer token checked against Home Assistant, Origin check, token cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from addon_clients import (
    HTTP_HEADERS,
    INITIALIZE,
    NON_ADMIN_TOKEN,
    SERVER_TOKEN,
    USER_TOKEN,
    http_server,
    http_session,
    post_initialize,
    server_env,
)
from addon_fakes import FakeHomeAssistant, populate
import httpx2
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


async def test_wrong_token_remembered(http_url: str, fake_ha: FakeHomeAssistant) -> None:
    """A token HA rejected is answered 401 again without asking HA (a failed login there)."""
    await post_initialize(http_url, Authorization="Bearer nope")
    checks, failed = fake_ha.token_checks, fake_ha.failed_logins
    again = await post_initialize(http_url, Authorization="Bearer nope")
    assert again.status_code == 401
    assert (fake_ha.token_checks, fake_ha.failed_logins) == (checks, failed)


async def test_non_admin_refused_by_default(http_url: str) -> None:
    response = await post_initialize(http_url, Authorization=f"Bearer {NON_ADMIN_TOKEN}")
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert "allow_non_admin" in response.json()["error_description"]


async def test_non_admin_allowed_by_option(env: dict[str, str], tmp_path: Path) -> None:
    with http_server({**env, "ALLOW_NON_ADMIN": "true"}, tmp_path / "server.log") as url:
        async with http_session(url, NON_ADMIN_TOKEN) as session:
            devices = await session.call_tool("list_devices", {})
    assert not devices.is_error


@pytest.fixture
def lonely_ha() -> Iterator[FakeHomeAssistant]:
    """A Home Assistant of its own, with login_attempts_threshold 5."""
    ha = FakeHomeAssistant(tokens={SERVER_TOKEN, USER_TOKEN}, ban_threshold=5)
    populate(ha)
    ha.start()
    yield ha
    ha.stop()


async def test_bad_token_burst(
    lonely_ha: FakeHomeAssistant, mosquitto: int, tmp_path: Path
) -> None:
    """1,000 bad tokens at once: HA sees at most a few failed logins (one notification, no
    ban), and a client whose token HA accepted before keeps working, even once its cache
    entry has expired."""
    env = server_env(lonely_ha, mosquitto, TOKEN_CACHE_TTL_S="0")
    with http_server(env, tmp_path / "server.log") as url:
        assert (await post_initialize(url, Authorization=f"Bearer {USER_TOKEN}")).status_code == 200
        async with httpx2.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        url,
                        json=INITIALIZE,
                        headers={**HTTP_HEADERS, "Authorization": f"Bearer bad-{i}"},
                    )
                    for i in range(1000)
                )
            )
        after = await post_initialize(url, Authorization=f"Bearer {USER_TOKEN}")
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}
    assert statuses.count(429) >= 990
    assert lonely_ha.failed_logins <= 3
    assert len(lonely_ha.notifications) <= 1
    assert not lonely_ha.banned
    assert after.status_code == 200


async def test_ha_refusing_is_unavailable_not_invalid(
    lonely_ha: FakeHomeAssistant, mosquitto: int, tmp_path: Path
) -> None:
    """HA answering 403 (it banned the add-on's address) says nothing about the token: 503."""
    env = server_env(lonely_ha, mosquitto)
    with http_server(env, tmp_path / "server.log") as url:
        lonely_ha.banned = True
        response = await post_initialize(url, Authorization=f"Bearer {USER_TOKEN}")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "403" in response.json()["error_description"]


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
