"""Operators' commands about an order needing attention (a compensation that failed): each is
an ``order.operator_action_requested`` event written to operations' outbox, which orders hears
and records in the order's stream. No other component's store is written here.

The shop's view says which orders need attention (``shop.readmodel.needing_attention``);
``workers.operator_actions`` joins the two for `shoeshop attention` and the admin pages.
"""

from __future__ import annotations

import re
from typing import cast, get_args

from celery import Celery

from workers.messaging.contracts import (
    LINE_PATTERN,
    NOTE_LENGTH,
    OperatorAction,
    OrderOperatorActionRequested,
    new_event,
)
from workers.messaging.database import transaction
from workers.messaging.deadletters import SOURCE
from workers.messaging.envelope import UUID_PATTERN, Envelope
from workers.messaging.outbox import Outbox
from workers.messaging.unit_of_work import publish_committed

__all__ = ["ACTIONS", "InvalidCommand", "check", "command", "request"]

ACTIONS: tuple[str, ...] = get_args(OperatorAction)
_ORDER_ID = re.compile(UUID_PATTERN)
_LINE = re.compile(LINE_PATTERN)


class InvalidCommand(Exception):
    """The command cannot be sent as given; nothing was written. ``fields`` maps each field at
    fault (``order_id``, ``action``, ``note``) to a sentence saying what is wrong."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields


def check(order_id: str, action: str, note: str) -> tuple[str, str, str]:
    """The command's fields as they will be sent (the note without surrounding spaces); raises
    InvalidCommand naming every field at fault."""
    note = note.strip()
    problems: dict[str, str] = {}
    if not _ORDER_ID.fullmatch(order_id):
        problems["order_id"] = "must be an order's id: a lower-case UUID of 36 characters"
    if action not in ACTIONS:
        problems["action"] = f"must be one of {', '.join(ACTIONS)}"
    if not note:
        problems["note"] = "is required: say what was done or why, for the order's record"
    elif len(note) > NOTE_LENGTH:
        problems["note"] = f"must be at most {NOTE_LENGTH} characters (it has {len(note)})"
    elif not _LINE.fullmatch(note):
        problems["note"] = "must be one line of text, without control characters"
    if problems:
        raise InvalidCommand(problems)
    return order_id, action, note


def command(order_id: str, action: str, note: str) -> Envelope:
    """The ``order.operator_action_requested`` event of a command; raises InvalidCommand."""
    order_id, action, note = check(order_id, action, note)
    data = OrderOperatorActionRequested(
        order_id=order_id, action=cast(OperatorAction, action), note=note
    )
    return new_event(data, source=SOURCE, subject=order_id)


def request(app: Celery, order_id: str, action: str, note: str) -> Envelope:
    """Send an operator's command about an order: written to operations' outbox, then published
    (the relay publishes it later if the broker is away). Returns the event. Raises
    InvalidCommand; sqlalchemy.exc.SQLAlchemyError when operations' database is away. Orders
    decides: a command about an order needing no attention is recorded as ignored."""
    event = command(order_id, action, note)
    with transaction("operations") as conn:
        Outbox(conn).emit(event)
    publish_committed(app, "operations", [event])
    return event
