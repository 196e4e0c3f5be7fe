"""Rate limits at the shop's edge, with flask-limiter (maintained, on the `limits` library):
guessing the admin password and flooding checkouts cost the guesser, not the shop.

- ``admin_login``: failed admin logins (a 401 from either admin blueprint) per client; once
  the limit is spent, every admin request of that client is refused until the window moves on.
- ``checkout``: checkouts per client, through the API and the basket's form alike (one count
  for both), each an RSA encryption and a write.

A refusal is a 429 with ``Retry-After`` (seconds), in the API's error shape under /api. Limits
and their values come from SHOESHOP_RATE_LIMITS (config.settings); "off" lifts one. The counts
live on the deployment's Redis when the broker is Redis (the embedded one included), so every
web process and host shares them; with RabbitMQ they are kept in each web process's memory, so
a client may get the limit once per process (docs/architecture.md, *Rate limits*). When the
store cannot be reached the request is let through (a limit is no reason to refuse customers).

The client is the connection's address; ``X-Forwarded-For`` is believed only when the
connection comes from a proxy of SHOESHOP_TRUSTED_PROXIES, and then its last address that is no
such proxy is the client (the ones before it could be written by the client itself).
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask.typing import RouteCallable
from flask_limiter import Limiter

from config.settings import Settings, get_settings
from shop.web import admin
from workers.messaging.broker_tls import redis_client_options

log = logging.getLogger(__name__)

CHECKOUT_VIEWS = ("api.place_order", "pages.basket_checkout")


def client_address() -> str:
    """The address the limits count by (see the module's docstring)."""
    remote = request.remote_addr or ""
    proxies = _networks(get_settings().trusted_proxies)
    if not proxies or not _within(remote, proxies):
        return remote
    forwarded = [
        hop.strip()
        for header in request.headers.getlist("X-Forwarded-For")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(forwarded):
        if not _within(hop, proxies):
            return hop
    return remote


def warn_of_an_unlisted_proxy() -> None:
    """A before-request hook, apart from the limiter's key (whose failure the limiter would
    swallow by letting the request through unlimited): behind a proxy that is not listed, every
    customer counts as the proxy (one limit for the whole shop; five wrong passwords lock the
    admin out). Said once per process, for the first such address."""
    if "X-Forwarded-For" not in request.headers or _warned:
        return
    remote = request.remote_addr or ""
    if _within(remote, _networks(get_settings().trusted_proxies)):
        return
    _warned.append(remote)
    log.warning(
        "X-Forwarded-For came from %s, which SHOESHOP_TRUSTED_PROXIES does not list: the rate "
        "limits count it as that one client; list the proxy if it is yours",
        remote,
    )


_warned: list[str] = []


@lru_cache(maxsize=4)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry) for entry in trusted)


def _within(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address: never a trusted proxy
    return any(ip in network for network in networks)


def storage_uri(settings: Settings) -> str:
    """Where the counts live: the broker's Redis (the embedded one over its unix socket), or
    this process's memory when the broker is not Redis."""
    url = settings.effective_broker_url
    scheme = url.partition("://")[0]
    if scheme == "redis+socket":
        return f"redis+unix://{urlsplit(url).path}"
    if scheme in ("redis", "rediss") and ";" not in url:
        return url
    return "memory://"


def init_app(app: Flask) -> Limiter:
    settings = get_settings()
    app.before_request(warn_of_an_unlisted_proxy)
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=storage_uri(settings),
        strategy="moving-window",
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="shoeshop-limits",
        # rediss://: the same certificate and host-name checks as the broker's own connections.
        storage_options=redis_client_options(settings),
    )
    login = settings.rate_limit("admin_login")
    if login is not None:
        failed = limiter.shared_limit(
            login, scope="admin_login", deduct_when=_failed_login, error_message=TOO_MANY_LOGINS
        )
        for blueprint in (admin.bp, admin.api_bp):
            failed(blueprint)
    checkout = settings.rate_limit("checkout")
    if checkout is not None:
        checkouts = limiter.shared_limit(
            checkout, scope="checkout", methods=["POST"], error_message=TOO_MANY_CHECKOUTS
        )
        for view in CHECKOUT_VIEWS:  # the limiter's wrapper checks the limit, in place
            app.view_functions[view] = cast(RouteCallable, checkouts(app.view_functions[view]))
    return limiter


def close(app: Flask) -> None:
    """Let go of the connections the app's limiter holds to its store (a test that builds many
    apps in one process calls this; a web process keeps its limiter for life)."""
    for limiter in app.extensions.get("limiter", ()):
        client = getattr(limiter.storage, "storage", None)
        if client is not None and hasattr(client, "close"):
            client.close()


TOO_MANY_LOGINS = "too many failed admin logins from this address; wait and try again"
TOO_MANY_CHECKOUTS = "too many checkouts from this address; wait a minute and try again"


def _failed_login(response: Response) -> bool:
    return response.status_code == 401
