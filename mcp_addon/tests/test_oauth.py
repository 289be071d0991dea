"""OAuth discovery (RFC 9728 protected-resource metadata naming Home Assistant), the client
registration Home Assistant lacks, the legacy /authorize and /token, and CORS on /mcp.

The login itself, against a real Home Assistant with the SDK's OAuth client, is in
test_real_system.py."""

from __future__ import annotations

from pathlib import Path
import re
import ssl
import subprocess
from urllib.parse import parse_qs, urlsplit

from addon_clients import USER_TOKEN, http_server, post_initialize, server_env
from addon_fakes import FakeHomeAssistant
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
import pytest


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def test_401_points_at_resource_metadata(http_url: str, fake_ha: FakeHomeAssistant) -> None:
    """A 401 names the metadata (RFC 9728 section 5.1); the metadata names the resource and
    Home Assistant (here the URL the server talks to, as the fake has no URLs configured)."""
    response = await post_initialize(http_url)
    header = response.headers["www-authenticate"]
    match = re.search(r'resource_metadata="([^"]+)"', header)
    assert response.status_code == 401
    assert match is not None, header
    assert match.group(1) == f"{origin_of(http_url)}/.well-known/oauth-protected-resource/mcp"
    async with httpx2.AsyncClient(timeout=30) as client:
        at_path = await client.get(match.group(1))
        at_root = await client.get(f"{origin_of(http_url)}/.well-known/oauth-protected-resource")
    assert at_path.status_code == 200
    metadata = at_path.json()
    assert metadata["resource"] == http_url
    assert metadata["authorization_servers"] == [fake_ha.url]
    assert metadata["bearer_methods_supported"] == ["header"]
    assert at_root.json() == metadata


async def test_invalid_token_401_also_names_metadata(http_url: str) -> None:
    response = await post_initialize(http_url, Authorization="Bearer not-a-token")
    header = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in header
    assert "resource_metadata=" in header


async def test_public_urls_from_options_and_home_assistant(mosquitto: int, tmp_path: Path) -> None:
    """PUBLIC_URL is the resource; without HA_PUBLIC_URL the authorization server is the
    external URL set in Home Assistant (a browser cannot reach the add-on's internal name)."""
    ha = FakeHomeAssistant(tokens={"server-token-0123456789"})
    ha.api_config = {"external_url": "https://home.example.net", "internal_url": None}
    ha.start()
    try:
        env = server_env(ha, mosquitto, PUBLIC_URL="https://mcp.example.net:8099")
        with http_server(env, tmp_path / "server.log") as url:
            async with httpx2.AsyncClient(timeout=30) as client:
                metadata = (
                    await client.get(f"{origin_of(url)}/.well-known/oauth-protected-resource/mcp")
                ).json()
                unauthorised = await post_initialize(url)
        env = server_env(ha, mosquitto, HA_PUBLIC_URL="http://ha.lan:8123/")
        with http_server(env, tmp_path / "server2.log") as url:
            async with httpx2.AsyncClient(timeout=30) as client:
                second = (
                    await client.get(f"{origin_of(url)}/.well-known/oauth-protected-resource")
                ).json()
    finally:
        ha.stop()
    assert metadata["resource"] == "https://mcp.example.net:8099/mcp"
    assert metadata["authorization_servers"] == ["https://home.example.net"]
    assert (
        'resource_metadata="https://mcp.example.net:8099/.well-known/oauth-protected-resource/mcp"'
        in unauthorised.headers["www-authenticate"]
    )
    assert second["authorization_servers"] == ["http://ha.lan:8123"]


@pytest.mark.parametrize(
    ("redirect_uris", "status", "client_id"),
    [
        (["http://127.0.0.1:33418/callback"], 201, "http://127.0.0.1:33418/"),
        (["http://localhost:3334/oauth/callback"], 201, "http://localhost:3334/"),
        (["https://Claude.AI/api/mcp/auth_callback"], 201, "https://claude.ai/"),
        (["cursor://anysphere.cursor-mcp/oauth/callback"], 400, None),
        (["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"], 400, None),
        ([], 400, None),
    ],
)
async def test_register_gives_the_indieauth_client_id(
    http_url: str, redirect_uris: list[str], status: int, client_id: str | None
) -> None:
    """Home Assistant identifies a client by a URL on the redirect URI's host: registering
    returns that URL, with no secret (a public client)."""
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{origin_of(http_url)}/register",
            json={"redirect_uris": redirect_uris, "client_name": "test client"},
        )
    assert response.status_code == status, response.text
    if client_id is None:
        assert response.json()["error"] == "invalid_redirect_uri"
        return
    body = response.json()
    assert body["client_id"] == client_id
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["redirect_uris"] == redirect_uris


async def test_legacy_authorize_redirects_to_home_assistant(
    http_url: str, fake_ha: FakeHomeAssistant
) -> None:
    query = "response_type=code&client_id=http%3A%2F%2F127.0.0.1%3A5%2F&state=xyz"
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.get(f"{origin_of(http_url)}/authorize?{query}")
    location = response.headers["location"]
    assert response.status_code == 302
    assert location.startswith(f"{fake_ha.url}/auth/authorize?")
    assert parse_qs(urlsplit(location).query)["state"] == ["xyz"]


async def test_legacy_token_passes_home_assistants_answer(
    http_url: str, fake_ha: FakeHomeAssistant
) -> None:
    """The token request reaches Core as it was sent, and Core's answer comes back."""
    form = {"grant_type": "authorization_code", "code": "c0de", "client_id": "http://x.lan/"}
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.post(f"{origin_of(http_url)}/token", data=form)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"] == "oauth-access-for-c0de"
    assert fake_ha.token_requests[-1] == form


# ---- CORS ------------------------------------------------------------------------------------


async def preflight(url: str, origin: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as client:
        return await client.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )


async def test_preflight_from_an_allowed_origin(http_url: str) -> None:
    response = await preflight(http_url, "https://allowed.example")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://allowed.example"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers


async def test_preflight_from_another_origin_refused(http_url: str) -> None:
    response = await preflight(http_url, "https://evil.example")
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


async def test_cors_headers_on_answers_to_an_allowed_origin(http_url: str) -> None:
    """The allowed origin itself, never "*", on the answer and on a 401 (a browser client can
    read WWW-Authenticate and start the login)."""
    ok = await post_initialize(
        http_url, Authorization=f"Bearer {USER_TOKEN}", Origin="https://allowed.example"
    )
    unauthorised = await post_initialize(http_url, Origin="https://allowed.example")
    for response in (ok, unauthorised):
        assert response.headers["access-control-allow-origin"] == "https://allowed.example"
        assert response.headers["vary"] == "Origin"
        assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in response.headers
    assert "Mcp-Session-Id" in ok.headers["access-control-expose-headers"]
    assert (ok.status_code, unauthorised.status_code) == (200, 401)


async def test_no_cors_headers_without_origin(http_url: str) -> None:
    response = await post_initialize(http_url, Authorization=f"Bearer {USER_TOKEN}")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_metadata_readable_from_any_page(http_url: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as client:
        response = await client.get(
            f"{origin_of(http_url)}/.well-known/oauth-protected-resource/mcp",
            headers={"Origin": "https://inspector.example"},
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


# ---- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_https(env: dict[str, str], certificate: tuple[Path, Path], tmp_path: Path) -> None:
    """With a certificate and key the endpoint speaks HTTPS only; the resource is https://."""
    cert, key = certificate
    tls_env = {**env, "TLS_CERTFILE": str(cert), "TLS_KEYFILE": str(key)}
    with http_server(tls_env, tmp_path / "server.log") as plain_url:
        url = plain_url.replace("http://", "https://", 1)
        context = ssl.create_default_context(cafile=str(cert))
        async with (
            httpx2.AsyncClient(
                verify=context,
                headers={"Authorization": f"Bearer {USER_TOKEN}"},
                timeout=httpx2.Timeout(30, read=60),
            ) as client,
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            devices = await session.call_tool("list_devices", {})
            metadata = (
                await client.get(f"{origin_of(url)}/.well-known/oauth-protected-resource/mcp")
            ).json()
        async with httpx2.AsyncClient(timeout=10) as client:
            with pytest.raises(httpx2.HTTPError):
                await client.post(plain_url, json={})
    assert not devices.is_error
    assert metadata["resource"] == url


async def test_legacy_token_requests_budgeted(
    env: dict[str, str], fake_ha: FakeHomeAssistant, tmp_path: Path
) -> None:
    """Home Assistant counts bad codes as failed logins from the add-on's address: past a few
    a minute per client the add-on answers 429 without passing them on."""
    form = {"grant_type": "authorization_code", "code": "bad", "client_id": "http://x.lan/"}
    with http_server(env, tmp_path / "server.log") as url:
        sent = len(fake_ha.token_requests)
        async with httpx2.AsyncClient(timeout=30) as client:
            answers = [
                (await client.post(f"{origin_of(url)}/token", data=form)).status_code
                for _ in range(15)
            ]
    assert answers.count(200) == 10
    assert answers[10:] == [429] * 5
    assert len(fake_ha.token_requests) - sent == 10
