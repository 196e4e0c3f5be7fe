"""What the shop does with the events it hears: log them, fold them into its view of each order."""

from __future__ import annotations

from sqlalchemy import Connection

from config.celery import app
from shop import live, readmodel
from workers.messaging.envelope import Envelope
from workers.messaging.outbox import Outbox

# The consumer has checked each event's data against its contract (workers.messaging.contracts)
# before a handler runs: a status is one the view ranks, a parcel has carrier and tracking number.


def on_order_status_changed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    _hear(conn, event, outbox)


def on_message_parked(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    _hear(conn, event, outbox)


def on_order_attention_changed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    _hear(conn, event, outbox)


def on_message_replayed(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    _hear(conn, event, outbox)


def _hear(conn: Connection, event: Envelope, outbox: Outbox) -> None:
    readmodel.remember(conn, event)
    readmodel.apply(conn, event, live=True)
    # The open tracking pages learn of it once it is committed (shop.live).
    live.announce_after_commit(app, outbox, conn, event.subject)
