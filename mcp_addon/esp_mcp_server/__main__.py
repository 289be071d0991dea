"""`python -m esp_mcp_server --transport stdio|http`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import logging
import os
import sys

from .config import ConfigError, Settings, apply_supervisor_mqtt, parse_args, settings_from_env
from .server import build_server
from .services import Services

_LOGGER = logging.getLogger("esp_mcp_server")


async def run(settings: Settings, transport: str) -> None:
    settings = await apply_supervisor_mqtt(settings, os.environ)
    services = Services(settings)
    await services.start()
    try:
        server = build_server(services)
        if transport == "stdio":
            await server.run_stdio_async()
            return
        import uvicorn  # noqa: PLC0415 - only the HTTP transport needs it

        from .http_app import build_http_app  # noqa: PLC0415
        from .oauth import OAuthEndpoints  # noqa: PLC0415

        oauth = OAuthEndpoints(services.ha, settings.public_url, settings.ha_public_url)
        app = build_http_app(
            server,
            services.ha,
            settings.allowed_origins,
            settings.token_cache_ttl_s,
            allow_non_admin=settings.allow_non_admin,
            oauth=oauth,
            pages=services.home_confirm,
        )
        config = uvicorn.Config(
            app,
            host=settings.mcp_host,
            port=settings.mcp_port,
            log_level=settings.log_level.lower(),
            access_log=False,
            lifespan="on",
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
        )
        scheme = "https" if settings.tls_certfile else "http"
        _LOGGER.info("MCP endpoint: %s://%s:%s/mcp", scheme, settings.mcp_host, settings.mcp_port)
        await uvicorn.Server(config).serve()
    finally:
        await services.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = settings_from_env(os.environ, args)
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _LOGGER.info("starting (%s transport): %r", args.transport, settings)
    try:
        asyncio.run(run(settings, args.transport))
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
