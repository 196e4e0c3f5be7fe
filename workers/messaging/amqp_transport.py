"""kombu's ``amqps://`` transport with the host name to check taken per connection.

kombu reads ``server_hostname: None`` in the TLS options as "the host of the URL in use" and
writes that host into the options dict it was handed (``kombu/transport/pyamqp.py``,
``Transport.establish_connection``), which Celery shares between every connection of a process:
after the first connection, a failover to the next node of the list would check that node's
certificate against the first node's name. ``SSLTransport`` gives each connection a copy naming
its own host. It changes that one step and is written to be offered upstream as its fix;
workers.messaging.broker_tls installs it (by name) and builds the options.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import pyamqp

from workers.messaging.broker_tls import HOST_OF_THE_URL


class SSLTransport(pyamqp.SSLTransport):
    """kombu's ``amqps://`` transport, with the host name to check taken per connection."""

    def establish_connection(self) -> Any:
        conninfo: Any = self.client
        options = conninfo.ssl
        if (
            isinstance(options, dict)
            and "server_hostname" in options
            and options["server_hostname"] is HOST_OF_THE_URL
        ):
            # A copy on this connection: the dict Celery shares keeps saying "the host of the
            # URL", and kombu's switch to the next URL of a failover list starts again from it.
            conninfo.ssl = {**options, "server_hostname": conninfo.hostname}
        return super().establish_connection()  # type: ignore[no-untyped-call]
