"""Helpers the integration tests share: reading stock and charges as a customer and the gateway
see them, and putting messages past the edge (raw bodies, events an outbox says it published)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from flask.testing import FlaskClient
from kombu import Producer
from sqlalchemy import Connection, insert, text
from sqlalchemy import event as sqlalchemy_event

from config.settings import COMPONENTS
from tests.support.shop import order_body
from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import Envelope
from workers.messaging.tables import outbox


def place(client: FlaskClient, **kwargs: Any) -> str:
    """Check out an order (``order_body``'s keywords) and return its id; asserts a 202."""
    response = client.post("/api/orders", json=order_body(**kwargs))
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def order(client: FlaskClient, order_id: str) -> dict[str, Any]:
    """The order as GET /api/orders/<id> answers."""
    return dict(client.get(f"/api/orders/{order_id}").get_json())


def stock_of(client: FlaskClient, sku: str, size: str) -> int:
    """Pairs available of one shoe and size, from GET /api/products."""
    product = next(p for p in client.get("/api/products").get_json() if p["sku"] == sku)
    return int(next(s["available"] for s in product["sizes"] if s["size"] == size))


def charges(gateway_url: str, order_id: str) -> list[dict[str, Any]]:
    """The gateway simulator's ledger for one order."""
    return list(httpx.get(f"{gateway_url}/v1/charges", params={"order_id": order_id}).json())


def publish_raw(celery_app: Celery, task: str, queue: str, body: bytes) -> None:
    """A message for ``task`` on ``queue`` whose body is ``body`` as it is (Celery protocol 2
    headers, so the worker knows the task; the body need not be JSON)."""
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": task, "id": task_id, "root_id": task_id}
    with celery_app.connection_for_write() as conn:
        Producer(conn).publish(  # type: ignore[no-untyped-call]
            body,
            exchange="shoeshop",
            routing_key=queue,
            headers=headers,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
        )


def published_at(component: str, events: Sequence[Envelope], when: datetime) -> None:
    """``events`` in ``component``'s outbox as written and published at ``when`` (nothing is
    sent: what a message the broker lost, or an old one, leaves behind)."""
    with transaction(component) as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "id": event.id,
                    "type": event.type,
                    "subject": event.subject,
                    "event": event.to_dict(),
                    "created_at": when,
                    "published_at": when,
                }
                for event in events
            ],
        )


Heard = Callable[[str, str, Any], None]
"""Told each statement a database runs: (component, SQL as sent to the driver, parameters)."""


# An execution option that marks a test's own probe: statements_run does not report it.
PROBE = "test_probe"


@contextmanager
def statements_run(heard: Heard) -> Iterator[None]:
    """Calls ``heard`` for every statement any component's database runs meanwhile, in any
    thread of this process (SQLAlchemy's before_cursor_execute event on each real engine),
    but a test's own probe (a connection with the execution option ``PROBE`` set)."""
    listeners = []
    for component in COMPONENTS:

        def tell(
            _conn: Any,
            _cursor: Any,
            sql: str,
            params: Any,
            context: Any,
            _many: bool,
            component: str = component,
        ) -> None:
            if not context.execution_options.get(PROBE):
                heard(component, sql, params)

        engine = engine_for(component)
        sqlalchemy_event.listen(engine, "before_cursor_execute", tell)
        listeners.append((engine, tell))
    try:
        yield
    finally:
        for engine, tell in listeners:
            sqlalchemy_event.remove(engine, "before_cursor_execute", tell)


def sqlite_file_bytes(paths: Iterable[Path]) -> bytes:
    """The bytes of the SQLite files (databases, write-ahead logs) among ``paths``, as they are on
    disk, read by another process (cat). Never open them in this process: closing any descriptor
    of a file drops every POSIX lock this process's SQLite connections hold on it (SQLite's "How
    To Corrupt An SQLite Database File", 2.2), and another process that then finds no lock may
    take itself for the last user and delete a write-ahead log still in use."""
    existing = [str(path) for path in paths if path.is_file()]
    if not existing:
        return b""
    return subprocess.run(["cat", *existing], capture_output=True, check=True).stdout


def on_component_schema(conn: Connection, component: str) -> None:
    """For the rest of this transaction, SQL that names no schema (a test's raw SQL, a reflection)
    reads ``component``'s tables on PostgreSQL: the shop's engines choose no search_path, they
    write the schema into each statement (workers.messaging.database). Nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f'SET LOCAL search_path TO "{component}"'))
