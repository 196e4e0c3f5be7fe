"""The Redis transport's client reuse (workers.messaging.redis_transport) on a real Redis."""

from __future__ import annotations

from pathlib import Path

from kombu import Connection

from workers.messaging import broker_tls, redis_transport
from workers.messaging.embedded_redis import EmbeddedRedis


def test_a_channel_reuses_one_client_until_its_pool_is_rebuilt(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis" / "redis.sock")
    redis.start()
    try:
        broker_tls.install()
        with Connection(redis.url) as conn:
            queue = conn.SimpleQueue("reuse")
            channel = queue.channel
            assert isinstance(channel, redis_transport.Channel)
            # Publishes and acknowledgements go through the channel's synchronous client.
            for n in range(5):
                queue.put({"n": n})
            received = []
            for _ in range(5):
                message = queue.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
            assert received == list(range(5))
            first = channel._create_client()
            assert channel._create_client() is first

            # kombu drops the pool after a connection error; the next client is on the new one.
            channel._disconnect_pools()
            second = channel._create_client()
            assert second is not first
            assert second.connection_pool is channel.pool
            queue.put({"n": 5})
            assert queue.get(timeout=5).payload == {"n": 5}
            queue.close()
    finally:
        redis.stop()
