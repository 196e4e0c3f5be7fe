"""Transport tables level off: published outbox rows and inbox rows past their retention go.

The outbox and the inbox carry events across the broker; once an event is published and every
re-sending of it is over, its rows are history nobody reads on a hot path. The relay deletes
them as a chore of its loop (``prune``): outbox rows published more than
``SHOESHOP_OUTBOX_RETENTION`` ago, inbox rows applied more than ``SHOESHOP_INBOX_RETENTION`` ago
(longer: an inbox row must outlive every re-sending of its event, which Settings checks). Each
batch of at most BATCH rows is its own short transaction, found by an index (``published_at``,
``processed_at``), so a checkout never waits behind it. With ``SHOESHOP_ARCHIVE_DIR`` set, each
batch is first appended to ``<dir>/<component>-<table>-<YYYY-MM-DD>.jsonl``, one row a line;
an outbox row about an order whose customer was erased (operations' ``erased_orders``) is
written erased, whether or not its component has erased it yet.

What is kept for ever: the orders event store, the shop's log (heard_events) and every
projection, the dead letters.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, delete, select, tuple_
from sqlalchemy.exc import SQLAlchemyError

from config.settings import QUEUES, get_settings
from workers.messaging.database import engine_for, give_back_free_pages, transaction
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.erasure import erase_event, erased_among
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.tables import erased_orders, inbox, outbox
from workers.operations import archives

log = logging.getLogger(__name__)

BATCH = 500
ARCHIVE_MODE = 0o600
# Batches per table per sweep: a sweep never runs long, a backlog of old rows drains over a few.
MAX_BATCHES = 20


def prune(
    now: datetime | None = None,
    *,
    outbox_retention: timedelta | None = None,
    inbox_retention: timedelta | None = None,
    archive_dir: Path | None = None,
    outboxes: Iterable[str] = EMITTING_COMPONENTS,
    inboxes: Iterable[str] = QUEUES,
) -> int:
    """Delete (after archiving, with ``archive_dir``) what is past its retention in every
    component's outbox and inbox; returns the rows removed. Unset arguments come from the
    settings (``now``: the clock). Raises sqlalchemy.exc.SQLAlchemyError when a database is
    away, OSError when the archive cannot be written (nothing of that batch is deleted)."""
    settings = get_settings()
    now = now or utcnow()
    outbox_retention = outbox_retention or timedelta(seconds=settings.outbox_retention_s)
    inbox_retention = inbox_retention or timedelta(seconds=settings.inbox_retention_s)
    archive_dir = archive_dir or settings.archive_dir
    removed_from: dict[str, int] = {}
    failed: list[Exception] = []
    # Each table on its own: one whose database is away (or whose archive cannot be written)
    # leaves the others to be pruned, and is reported once they are.
    work = [(c, _prune_outbox, now - outbox_retention) for c in outboxes] + [
        (c, _prune_inbox, now - inbox_retention) for c in inboxes
    ]
    for component, prune_one, cutoff in work:
        try:
            pruned = prune_one(component, cutoff, archive_dir)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("pruning %s failed: %s", component, exc)
            failed.append(exc)
            continue
        removed_from[component] = removed_from.get(component, 0) + pruned
    for component, pruned in removed_from.items():
        if pruned:  # SQLite gives the freed pages back, so the file shrinks
            give_back_free_pages(component)
    removed = sum(removed_from.values())
    if removed:
        log.info("pruned %d outbox and inbox row(s) past their retention", removed)
    if failed:
        raise failed[0]
    return removed


_OLD_OUTBOX = (
    select(outbox)
    .where(outbox.c.published_at.is_not(None), outbox.c.published_at < bindparam("cutoff"))
    .order_by(outbox.c.published_at)
    .limit(BATCH)
)
_OLD_INBOX = (
    select(inbox)
    .where(inbox.c.processed_at < bindparam("cutoff"))
    .order_by(inbox.c.processed_at)
    .limit(BATCH)
)


def _prune_outbox(component: str, cutoff: datetime, archive_dir: Path | None) -> int:
    def remove(conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(delete(outbox).where(outbox.c.seq.in_([row["seq"] for row in rows])))

    return _prune(component, outbox, _OLD_OUTBOX, remove, cutoff, archive_dir)


def _prune_inbox(component: str, cutoff: datetime, archive_dir: Path | None) -> int:
    def remove(conn: Connection, rows: list[dict[str, Any]]) -> None:
        keys = [(row["event_id"], row["consumer"]) for row in rows]
        conn.execute(delete(inbox).where(tuple_(inbox.c.event_id, inbox.c.consumer).in_(keys)))

    return _prune(component, inbox, _OLD_INBOX, remove, cutoff, archive_dir)


def _prune(
    component: str,
    table: Table,
    old: Select[Any],
    remove: Callable[[Connection, list[dict[str, Any]]], None],
    cutoff: datetime,
    archive_dir: Path | None,
) -> int:
    """Up to MAX_BATCHES batches of ``old`` rows (oldest first), each archived then removed in
    one short transaction; returns the rows removed."""
    removed = 0
    for _ in range(MAX_BATCHES):
        with transaction(component) as conn:
            rows = [dict(row) for row in conn.execute(old, {"cutoff": cutoff}).mappings()]
            if not rows:
                break
            _archive(archive_dir, component, table, rows, conn)
            remove(conn, rows)
        removed += len(rows)
        if len(rows) < BATCH:
            break
    return removed


def _archive(
    archive_dir: Path | None,
    component: str,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conn: Connection | None = None,
) -> None:
    """Append ``rows`` of ``component``'s ``table`` to its archive file; ``conn`` is the
    pruning transaction's, which reads operations' erased orders when the rows are operations'
    own (a second connection would wait on this one's write lock on SQLite)."""
    if archive_dir is None:
        return
    day = utcnow().date().isoformat()
    path = archive_dir / f"{component}-{table.name}-{day}.jsonl"
    # Under the lock an erasure rewrites the files under: an erasure that recorded its orders
    # before this read is seen here, one that records them after it rewrites this batch.
    with archives.locked(archive_dir):
        # Noted for an erasure run with another environment to find it; on the pruning
        # transaction when the rows are operations' own (SQLite: one writer).
        operations = conn if component == "operations" else None
        archives.record(archive_dir, operations)
        if table is outbox:
            rows = _erased_where_due(rows, operations)
        lines = "".join(
            json.dumps(row, default=_json_default, sort_keys=True) + "\n" for row in rows
        )
        # Readable by the relay's user only: the rows hold customers' names and addresses.
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, ARCHIVE_MODE)
        with open(handle, "a", encoding="utf-8") as archive:
            archive.write(lines)
            archive.flush()


def _erased_where_due(
    rows: Sequence[dict[str, Any]], operations: Connection | None
) -> list[dict[str, Any]]:
    """``rows`` (outbox rows) with the event of each about an erased order erased; the erased
    orders read on ``operations`` (a connection to operations' database), or on one of its own."""
    subjects = [row["subject"] for row in rows if row.get("subject")]
    if operations is not None:
        erased = erased_among(operations, erased_orders, subjects)
    else:
        with engine_for("operations").connect() as conn:
            erased = erased_among(conn, erased_orders, subjects)
    return [
        {**row, "event": erase_event(row["event"])} if row.get("subject") in erased else row
        for row in rows
    ]


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")
