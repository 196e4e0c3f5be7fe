"""What the shop does with the events it hears: log them, fold them into its view of each order."""

from __future__ import annotations

from sqlalchemy import Connection

from shop import readmodel
from workers.messaging.envelope import Envelope
from workers.messaging.outbox import Outbox

# The consumer has checked each event's data against its contract (workers.messaging.contracts)
# before a handler runs: a status is one the view ranks, a parcel has carrier and tracking number.


def on_order_status_changed(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    _hear(conn, event)


def on_message_parked(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    _hear(conn, event)


def on_message_replayed(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    _hear(conn, event)


def _hear(conn: Connection, event: Envelope) -> None:
    readmodel.remember(conn, event)
    readmodel.apply(conn, event, live=True)
