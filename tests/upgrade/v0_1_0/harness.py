"""0.1.0's running shop as the scenario sees it: its API, its broker, its databases, and waiting.

Child side: imported only inside the 0.1.0 worktree, where ``tests``, ``workers`` and ``shop``
are 0.1.0's (imported lazily, so the parent can load this file for type checks).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .common import QUEUES, RABBITMQ_HOST, TAG, BuildError, rabbitmq_list, rows, transient

if TYPE_CHECKING:  # 0.1.0's helper, imported for real only inside the worktree
    from tests.support.processes import Processes

T = TypeVar("T")

# The Procfile lines we run. No beat: its payment sweep has nothing to do with a ten-year
# deadline, and without its parcel sweep a parcel packed with SHOESHOP_PACKING_DELAY cannot leave,
# so the paid order is sure to be cancelled before it ships. No flower: it adds nothing here.
SHOP = ("gateway", "web", "shop", "orders", "payments", "shipping", "relay")
OUTBOX_DBS = ("shop", "orders", "payments", "shipping")

WAIT_S = 90.0
QUIET_HOLD_S = 2.0


class Broker(Protocol):
    url: str

    def depths(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class EmbeddedBroker:
    """0.1.0's embedded Redis under the data dir, started as its tests/support/stack.py does."""

    def __init__(self, data: Path) -> None:
        import redis

        from workers.messaging.embedded_redis import EmbeddedRedis

        self.server = EmbeddedRedis(data / "redis" / "redis.sock")
        self.server.start()
        self.url = self.server.url
        self.client = redis.Redis(unix_socket_path=str(self.server.sock))

    def depths(self) -> dict[str, int]:
        """Messages on each queue's list, and those taken by a worker and not yet acknowledged."""
        found = {queue: int(self.client.llen(queue)) for queue in QUEUES}
        return {**found, "unacked": int(self.client.hlen("unacked"))}

    def stop(self) -> None:
        """SIGTERM: Redis writes and syncs its append-only file before it exits."""
        self.client.close()
        self.server.stop()


class RabbitBroker:
    """The machine's RabbitMQ, in the vhost the parent made for this build."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.url = f"amqp://guest:guest@{RABBITMQ_HOST}/{vhost}"

    def depths(self) -> dict[str, int]:
        """Ready plus unacknowledged messages of every queue (retry delay queues included)."""
        queues = rabbitmq_list("list_queues", self.vhost, "name messages")
        return {q["name"]: int(q["messages"]) for q in queues if not transient(q["name"])}

    def stop(self) -> None:
        """Nothing to stop: the parent reads the queue, then deletes the vhost."""


@dataclass
class Shop:
    """0.1.0's running processes and what the build needs to watch and talk to them."""

    processes: Processes
    data: Path
    broker: Broker
    http: Any  # an httpx.Client
    last4: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.processes.url("web")

    @property
    def gateway_url(self) -> str:
        return self.processes.url("gateway")

    # -- talking to it

    def place(self, card: str, index: int) -> str:
        """One checkout over the API, each with its own shoe and size; it must be accepted."""
        from tests.chaos.flow import SIZES, SKUS
        from tests.support.shop import order_body

        body = order_body(
            card=card,
            sku=SKUS[index % len(SKUS)],
            size=SIZES[index % len(SIZES)],
            quantity=1 + index % 2,
        )
        key = {"Idempotency-Key": f"{TAG}-fixture-{index:02d}"}
        response = self.http.post(f"{self.url}/api/orders", json=body, headers=key)
        if response.status_code != 202:
            raise self.error(f"checkout {index}: {response.status_code} {response.text}", "web")
        order_id = str(response.json()["id"])
        self.last4[order_id] = card[-4:]
        return order_id

    def cancel(self, order_id: str) -> None:
        response = self.http.post(f"{self.url}/api/orders/{order_id}/cancel")
        if response.status_code != 202:
            raise self.error(f"cancel {order_id}: {response.status_code} {response.text}", "web")

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/api/orders/{order_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def charges(self, order_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.gateway_url}/v1/charges", params={"order_id": order_id})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    # -- watching it

    def wait(
        self,
        what: str,
        probe: Callable[[], T | None],
        *logs: str,
        seen: Callable[[], object] | None = None,
    ) -> T:
        """Poll ``probe`` until it returns something truthy, at most WAIT_S seconds; on timeout
        the error says what was last seen and ends with the tails of the named logs."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if found := probe():
                return found
            time.sleep(0.25)
        last = (seen or self.in_flight)()
        raise self.error(f"{what}: not within {WAIT_S}s; last seen: {last}", *logs)

    def wait_status(self, ids: list[str], status: str, reason: str | None, *logs: str) -> None:
        def statuses() -> dict[str, tuple[str, str | None]]:
            views = {oid: self.order(oid) for oid in ids}
            return {oid: (view["status"], view["reason"]) for oid, view in views.items()}

        def reached() -> bool:
            return set(statuses().values()) == {(status, reason)}

        self.wait(f"orders to be {status} ({reason})", reached, *logs, seen=statuses)

    def wait_quiet(self, expected: dict[str, int] | None = None) -> None:
        """Every outbox published and every queue holding ``expected`` (nothing by default),
        for QUIET_HOLD_S in a row: nothing is in flight any more."""
        expected = expected or {}
        since: list[float] = []

        def quiet() -> bool:
            unpublished, depths = self.in_flight()
            queues = set(depths) | set(expected)
            if unpublished or any(depths.get(q, 0) != expected.get(q, 0) for q in queues):
                since.clear()
                return False
            since[:] = since or [time.monotonic()]
            return time.monotonic() - since[0] >= QUIET_HOLD_S

        self.wait(f"the shop to be quiet, queues at {expected or 'zero'}", quiet, *SHOP)

    def in_flight(self) -> tuple[int, dict[str, int]]:
        """Outbox rows not yet published, and the messages on (or taken from) each queue."""
        depths = self.broker.depths()
        return self.unpublished(), {queue: n for queue, n in depths.items() if n}

    def unpublished(self) -> int:
        """Outbox rows of every component not yet on the broker."""
        return sum(
            count(self.data / f"{db}.db", "outbox WHERE published_at IS NULL") for db in OUTBOX_DBS
        )

    def parked_letters(self, order_id: str) -> list[tuple[str, str, str, int]]:
        return rows(
            self.data / "operations.db",
            "SELECT id, task, status, attempts FROM dead_letters WHERE subject = ?",
            order_id,
        )

    def error(self, message: str, *logs: str) -> BuildError:
        tails = "".join(
            f"\n--- last lines of {name}.log ---\n{self.processes.tail(name, 2500)}"
            for name in logs
        )
        return BuildError(message + tails)


def count(database: Path, where: str) -> int:
    try:
        found = rows(database, f"SELECT count(*) FROM {where}")
    except sqlite3.OperationalError:
        return 0  # the table is created on the component's first message
    return int(found[0][0])


def stock(data: Path) -> list[dict[str, Any]]:
    found = rows(data / "shop.db", "SELECT sku, size, available, reserved, sold FROM stock")
    names = ("sku", "size", "available", "reserved", "sold")
    return sorted(
        (dict(zip(names, row, strict=True)) for row in found), key=lambda r: (r["sku"], r["size"])
    )
