"""Every query on a hot path finds its rows by an index, at any age of the shop (issue #14).

The statements are not listed by hand: every statement each database runs while the hot paths
run (a checkout, the order's whole flow through every worker, reading it, its tracking stream's
first frame, a cancellation, the relay, the redelivery sweep, the deadline sweeps, a metrics
scrape (the timers' orders past their deadline among its readers), the admin pages, retention,
a customer's erasure and each component's part in it) is captured (SQLAlchemy's
before_cursor_execute) and asked for its plan: EXPLAIN QUERY PLAN on SQLite (a SCAN, of the
table or of a whole index), EXPLAIN with sequential scans priced out on PostgreSQL (its planner
scans a table of a few rows whatever the indexes; priced out, it still scans where no index
serves, or walks a whole index with no condition on it). A full read of a table that grows with
orders fails the test.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from shop import acceptance
from tests.support.integration import PROBE, on_component_schema, order, place, statements_run
from tests.support.shop import FAILING_CARD, wait_for
from workers.customer_erasure import erase_customer
from workers.messaging.database import engine_for
from workers.messaging.envelope import utcnow
from workers.messaging.tables import inbox
from workers.operations import metrics as operations_metrics
from workers.operations import redelivery, relay, retention
from workers.orders import timer

pytestmark = pytest.mark.usefixtures("worker")

# Tables whose rows do not grow with orders: the catalogue and its stock, the counts per status
# and reason, the subscribers' lag (a row per queue), the archive directories the relay used (a
# row per SHOESHOP_ARCHIVE_DIR it was ever given), Alembic's version.
BOUNDED = {
    "products",
    "stock",
    "order_counts",
    "subscriber_lag",
    "archive_dirs",
    "alembic_version",
}
ADMIN = {"Authorization": "Basic OmFkbWlu"}  # any user, the development password "admin"

Captured = dict[str, set[tuple[str, Any]]]


@contextmanager
def statements() -> Iterator[Captured]:
    """Every statement each component's database runs meanwhile, in any thread (the worker's
    too), with one set of its parameters (component -> {(sql, parameters)})."""
    seen: Captured = defaultdict(set)

    def heard(component: str, sql: str, params: Any) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            seen[component].add((sql, _frozen(params)))

    with statements_run(heard):
        yield seen


def _frozen(params: Any) -> Any:
    if isinstance(params, dict):
        return tuple(sorted((key, _frozen(value)) for key, value in params.items()))
    if isinstance(params, list | tuple):
        return tuple(_frozen(value) for value in params)
    return params


def full_scans(component: str, sql: str, params: Any) -> list[str]:
    """The growing tables ``sql`` reads whole, by its plan on the component's database."""
    engine = engine_for(component)
    bound = _thawed(params)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", bound)]
            scanned = [m.group(1) for line in plan if (m := re.match(r"SCAN (\w+)", line))]
        else:
            on_component_schema(conn, component)
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            [[plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", bound).all()
            scanned = list(_whole_reads(plan[0]["Plan"]))
            conn.rollback()
    return [table for table in scanned if table not in BOUNDED]


def _whole_reads(node: dict[str, Any]) -> Iterator[str]:
    """The tables a PostgreSQL plan reads whole: a sequential scan, or an index walked from end
    to end (an index scan with no condition on the index, which seqscan priced out invites)."""
    kind = node.get("Node Type", "")
    if kind == "Seq Scan" or (kind.startswith("Index") and "Index Cond" not in node):
        yield str(node["Relation Name"])
    for child in node.get("Plans", []):
        yield from _whole_reads(child)


def _thawed(params: Any) -> Any:
    if isinstance(params, tuple) and all(
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in params
    ):
        return {key: _thawed(value) for key, value in params}
    if isinstance(params, tuple):
        return tuple(_thawed(value) for value in params)
    return params


def erasures_heard(component: str) -> int:
    """How many customer.erased events the component has applied (the test's probe, not a
    statement of the shop's to check)."""
    with engine_for(component).connect().execution_options(**{PROBE: True}) as conn:
        heard = select(func.count()).where(inbox.c.consumer.like("%customer_erased%"))
        return int(conn.execute(heard).scalar_one())


def test_every_hot_path_query_finds_its_rows_by_an_index(
    client: FlaskClient, celery_app: Celery
) -> None:
    with statements() as seen:
        shipped = place(client, sku="CRT-001", size="40")
        waiting = place(client, card=FAILING_CARD, sku="CRT-001", size="41")
        wait_for(lambda: order(client, shipped)["status"] == "SHIPPED")
        wait_for(lambda: order(client, waiting)["delayed"], timeout_s=60)
        client.get(f"/orders/{shipped}")
        with client.get(f"/api/orders/{shipped}/events") as stream:
            next(stream.response)  # the first frame
        client.post(f"/api/orders/{waiting}/cancel")
        wait_for(lambda: order(client, waiting)["status"] == "CANCELLED")
        client.get("/metrics")
        # Read at each scrape too; named here, so a scrape that lost the source still checks it.
        list(operations_metrics.deadline_metrics())
        for page in ("/admin", "/admin/dead-letters", f"/admin/orders/{shipped}"):
            assert client.get(page, headers=ADMIN).status_code == 200, page
        now = utcnow()
        for component in relay.EMITTING_COMPONENTS:
            relay.relay_once(celery_app, component)
        redelivery.redeliver_unapplied(celery_app, now, redelivery.WATCH)
        timer.sweep(celery_app, now)
        acceptance.sweep(celery_app, now)
        retention.prune(now)
        erase_customer(celery_app, "ADA@example.com")  # order_body's customer
        for component in ("orders", "shipping", "notifications"):
            wait_for(lambda c=component: erasures_heard(c) > 0)

    scans = {
        (component, sql): tables
        for component, found in seen.items()
        for sql, params in found
        if (tables := full_scans(component, sql, params))
    }
    assert not scans, "\n\n".join(f"{c}: {t} in\n{sql}" for (c, sql), t in scans.items())
