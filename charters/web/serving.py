"""How the web endpoints are served: uvicorn, behind the TLS reverse proxy in production.

uvicorn replaces the client address with the last untrusted entry of `X-Forwarded-For` only
when the connecting peer is in `forwarded_allow_ips` (its ProxyHeadersMiddleware; addresses or
CIDRs). In docker-compose.yml that is the proxy's fixed address alone: a browser that sends its
own `X-Forwarded-For` straight to the endpoint cannot pick the address the rate limit counts,
and the proxy's own address is never what is counted (60 a minute for all crew together).
"""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp


def uvicorn_config(app: ASGIApp, host: str, port: int, forwarded_allow_ips: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
    )


def serve(config: uvicorn.Config) -> None:
    uvicorn.Server(config).run()
