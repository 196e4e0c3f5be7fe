"""kombu's Redis transport with one client per connection pool, not one per operation.

kombu's Redis channel runs each command it sends outside a consumer's own loop (a publish, an
acknowledgement, the restore of unacknowledged messages, a queue's size) through
``Channel.conn_or_acquire``, which builds a new ``redis.Redis`` around the channel's connection
pool every time (``kombu/transport/redis.py``, ``Channel._create_client``). A ``redis.Redis`` is
a thin handle on its pool (each command borrows a connection from the pool and gives it back)
but redis-py 8 makes it expensive to build: about 240 µs of CPU on this project's 2-core machine
(``timeit`` of ``redis.Redis(connection_pool=pool)``, 2026-11-30), three times a ``PING``'s round
trip, and several of them per message.

``Channel`` keeps the synchronous client it built and hands it out again while the channel's
pool is the one it was built on (kombu drops and rebuilds the pool after a connection error,
``Channel._disconnect_pools``; a new pool gets a new client). redis-py's clients are safe to
share between threads: the state of a command lives on the connection it borrows. The
asynchronous client (the consumer's ``BRPOP`` and pub/sub) was already built once per channel.

``workers.messaging.broker_tls.install`` makes ``Transport`` the transport of ``redis://``,
``rediss://`` and ``redis+socket://`` URLs in the process, by name: this module, and redis-py
with it, is imported only by a process that connects to Redis. The change is one method, written
to be offered to kombu as it stands; the system and the bench's baselines
(workers.bench.transport) both run with it, so neither side is measured with a transport the
other lacks.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses its synchronous client while its connection pool lives."""

    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()  # type: ignore[no-untyped-call]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
