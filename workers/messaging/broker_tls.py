"""TLS to the broker, verified: the node's certificate must chain to a trusted CA and name the host.

With an ``amqps://`` or ``rediss://`` SHOESHOP_BROKER_URL, every connection the shop opens to
its broker (Celery's, through ``broker_use_ssl``, and the rate limiter's Redis client) refuses a
certificate that does not chain to SHOESHOP_BROKER_CA_FILE (the system's store when unset) or
does not name the host its URL names. Left to their defaults the libraries do less: py-amqp
checks the chain but no host name (no ``server_hostname``, ``amqp/transport.py``), and kombu
turns a bare ``rediss://`` into ``ssl_cert_reqs=CERT_NONE`` with a warning
(``kombu/connection.py``, ``Connection._init_params``).

kombu's AMQP transport reads ``server_hostname: None`` as "the host of the URL in use", and
writes that host into the options it was handed (``kombu/transport/pyamqp.py``,
``Transport.establish_connection``). Celery hands every connection of a process the same
``broker_use_ssl`` dict, so after the first connection every later one, a failover to the
second node of the list included, would check its node's certificate against the first node's
name and refuse it. ``workers.messaging.amqp_transport.SSLTransport`` gives each connection a
copy that names its own host; ``install`` makes it the transport of ``amqps://`` URLs, and
``workers.messaging.redis_transport.Transport`` that of Redis URLs. Both are named by string, so
a process imports a transport's module (and its client library) only when it connects with it.
"""

from __future__ import annotations

import ssl
from typing import Any

from kombu.transport import TRANSPORT_ALIASES

from config.settings import Settings
from workers.messaging.broker_dead import is_amqp

HOST_OF_THE_URL = None  # kombu's value of ``server_hostname`` for "the host being connected to"


def install() -> None:
    """Make the shop's transports those of kombu's schemes in this process (every process loads
    config.celeryconfig, which calls this): ``amqps://``, the per-connection host-name check
    (workers.messaging.amqp_transport); ``redis://``, ``rediss://`` and ``redis+socket://``, one
    client per connection pool (workers.messaging.redis_transport)."""
    TRANSPORT_ALIASES["amqps"] = "workers.messaging.amqp_transport:SSLTransport"
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = "workers.messaging.redis_transport:Transport"


def _ca_certs(settings: Settings) -> str | None:
    return str(settings.broker_ca_file) if settings.broker_ca_file is not None else None


def broker_use_ssl(settings: Settings) -> dict[str, Any] | None:
    """Celery's ``broker_use_ssl`` for ``settings``: None for a plain broker URL; for
    ``amqps://``, py-amqp's ``ssl`` options (``cert_reqs``, ``ca_certs``, ``server_hostname``);
    for ``rediss://``, redis-py's (``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_check_hostname``).
    ``ca_certs`` None means the system's store."""
    if not settings.broker_tls:
        return None
    if is_amqp(settings.effective_broker_url):
        return {
            "cert_reqs": ssl.CERT_REQUIRED,
            "ca_certs": _ca_certs(settings),
            "server_hostname": HOST_OF_THE_URL,
        }
    return {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": _ca_certs(settings),
        "ssl_check_hostname": True,
    }


def redis_client_options(settings: Settings) -> dict[str, Any]:
    """The same checks for a redis-py client of the broker's Redis that is not Celery's (the
    rate limiter's storage, ``redis.from_url`` keyword arguments); empty unless ``rediss://``."""
    if not settings.broker_tls or is_amqp(settings.effective_broker_url):
        return {}
    return {
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": _ca_certs(settings),
        "ssl_check_hostname": True,
    }
