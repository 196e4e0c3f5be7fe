"""Dead letters, the parking side: what every worker needs to park a message that failed for good.

A parked message is stored in the operations database (``dead_letters``) with everything needed
to replay it: the event (or the raw body), the task and queue it was for, the exception, its
traceback and the attempts; the order it names hears of it (``message.parked``, written with the
letter). Listing, showing, replaying and discarding are the operators' side, in
workers.operations.dlq.
"""

from __future__ import annotations

import json
import logging
import math
import re
import traceback
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import Connection

from config.settings import OBSERVER_QUEUES, QUEUES
from workers.messaging import contracts
from workers.messaging.contracts import Fault
from workers.messaging.database import transaction, upsert_insert
from workers.messaging.envelope import UUID_PATTERN, Envelope, as_utc, event_name, utcnow
from workers.messaging.erasure import (
    ERASED,
    erase_event,
    erased_among,
    lock_orders,
    personal_values,
    redact,
)
from workers.messaging.errors import InvalidEvent, InvariantViolation
from workers.messaging.faults import is_transient
from workers.messaging.outbox import Outbox
from workers.messaging.subscriptions import queue_of
from workers.messaging.tables import dead_letters, erased_orders
from workers.messaging.unit_of_work import publish_committed

log = logging.getLogger(__name__)

_UUID = re.compile(UUID_PATTERN)
# What PostgreSQL's text refuses (NUL) and UTF-8 cannot encode (a lone surrogate).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# A letter's status: parked by a worker; replayed or discarded by an operator (a replayed letter
# that fails again is parked again, on its own row).
PARKED, REPLAYED, DISCARDED = "parked", "replayed", "discarded"
# The queue a letter is filed under when the task it was for names no component queue (a
# message the broker dead-lettered without saying from where, or one nobody could decode).
UNKNOWN_QUEUE = "unknown"
# The source of the events parking writes (message.parked), from the operations database.
SOURCE = "/operations"
STATUSES = (PARKED, REPLAYED, DISCARDED)


@dataclass(frozen=True)
class DeadLetter:
    """One row of ``dead_letters``: ``event`` is the CloudEvent as a dict, or None when the body
    was not one (``raw`` then holds it as text); times are aware UTC datetimes; ``attempts``
    counts every failed delivery, replays included; ``status`` is one of STATUSES."""

    id: str
    event_id: str | None
    subject: str | None
    task: str
    queue: str
    event: dict[str, Any] | None
    raw: str | None
    exception: str
    message: str
    traceback: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    status: str

    def to_dict(self) -> dict[str, Any]:
        """Every field, the times as ISO 8601 strings: JSON-ready."""
        data = asdict(self)
        data["first_failed_at"] = self.first_failed_at.isoformat()
        data["last_failed_at"] = self.last_failed_at.isoformat()
        return data


# The task an undecodable message was meant for is unknown: its name is inside the message.
UNDECODABLE_TASK = "(undecodable)"


def park(
    task: str,
    body: object,
    exc: BaseException,
    attempts: int,
    first_failed_at: datetime | None = None,
    *,
    app: Celery | None = None,
) -> str:
    """Store a failed message with its reason and traceback; returns the dead letter's id.

    ``body`` is the event (a dict) or whatever the task received; ``attempts`` the deliveries
    that failed; ``first_failed_at`` when its first attempt failed (now, when not given). The same
    event parked again for the same task updates its row (attempts add up). When the body names
    an order, an ``message.parked`` event for the shop is written with the letter (operations'
    outbox) and, given ``app``, published at once (else by the relay). Raises
    sqlalchemy.exc.SQLAlchemyError when the operations database is away.
    """
    detail = "".join(traceback.format_exception(exc))
    failure = _Failure(type(exc).__name__, str(exc), detail, fault_of(exc))
    return _park(task, _queue(task), body, failure, attempts, app, first_failed_at)


def fault_of(exc: BaseException) -> Fault:
    """Why a message that raised ``exc`` is parked (contracts.Fault): ``invalid`` for a message
    nothing can apply (it does not parse, or breaks an invariant of the domain),
    ``retries_exhausted`` for a transient fault that outlasted its retries, else ``bug``."""
    if isinstance(exc, InvalidEvent | InvariantViolation):
        return "invalid"
    if is_transient(exc):
        return "retries_exhausted"
    return "bug"


def park_rejected(
    task: str, queue: str, body: object, reason: str, attempts: int, *, app: Celery | None = None
) -> str:
    """Store a message the broker dead-lettered (delivery limit, rejection); ``reason`` is its
    x-death header as JSON. Returns the dead letter's id; raises and notifies as ``park``."""
    note = "dead-lettered by the broker; no traceback in this process"
    failure = _Failure("RejectedByBroker", reason, note, "rejected_by_broker")
    return _park(task, queue, body, failure, attempts, app)


def park_undecodable(queue: str, raw: bytes | str, exc: BaseException) -> str:
    """Store a message no task could even read (not JSON, a forbidden content type) as text,
    under the task UNDECODABLE_TASK. Returns the dead letter's id; raises as ``park`` (no order
    can be named from it, so nobody is notified)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    detail = "".join(traceback.format_exception(exc))
    failure = _Failure(type(exc).__name__, str(exc), detail, "invalid")
    return _park(UNDECODABLE_TASK, queue, text, failure, 1, None)


@dataclass(frozen=True)
class _Failure:
    exception: str
    message: str
    detail: str
    fault: Fault


def _park(
    task: str,
    queue: str,
    body: object,
    failure: _Failure,
    attempts: int,
    app: Celery | None,
    first_failed_at: datetime | None = None,
) -> str:
    now = utcnow()
    # What was received is kept whatever it holds: as the event when every component's database
    # can store it, else as ASCII JSON text in `raw` (NUL, control characters and lone
    # surrogates escaped), so parking never fails on what it parks.
    event = body if isinstance(body, dict) and _storable(body) else None
    columns = {
        "exception": _escaped(failure.exception[:200]),
        "message": _escaped(failure.message),
        "traceback": _escaped(failure.detail),
    }
    about = _orders_named(body)
    # An event whose subject and data name two orders contradicts itself: its letter is about
    # neither (no order is told it is delayed), and an erasure of either finds it among the
    # letters that name no order, by what it holds (operations.erasure).
    subject = about[0] if len(about) == 1 and about[0] == _id(body, "subject") else None
    with transaction("operations") as conn:
        if about:
            # A message about an order whose customer was erased meanwhile (it was being
            # retried) is parked erased: the erasure has passed and will not come back for it.
            lock_orders(conn, about)
            if erased_among(conn, erased_orders, about):
                quoted = personal_values(event.get("data") if event is not None else None)
                event = erase_event(event) if event is not None else None
                columns = {
                    **columns,
                    "message": redact(columns["message"], quoted),
                    "traceback": redact(columns["traceback"], quoted),
                }
                body = event if event is not None else ERASED
        stmt = upsert_insert(conn, dead_letters)
        # The same event failing again for the same task (a replay, or two workers parking it at
        # once) lands on its one row: attempts add up, the first failure time stays. A body that
        # is not an event has no event_id, and NULLs never conflict: each is its own row.
        stmt = stmt.on_conflict_do_update(
            index_elements=[dead_letters.c.event_id, dead_letters.c.task],
            set_={
                **columns,
                "attempts": dead_letters.c.attempts + stmt.excluded.attempts,
                "last_failed_at": stmt.excluded.last_failed_at,
                "status": PARKED,
            },
        )
        row = {
            **columns,
            "id": str(uuid.uuid4()),
            "event_id": _id(body, "id"),
            "subject": subject,
            "task": task,
            "queue": queue,
            "event": event,
            "raw": None if event is not None else _raw(body),
            "attempts": attempts,
            "first_failed_at": first_failed_at or now,
            "last_failed_at": now,
            "status": PARKED,
        }
        returned = conn.execute(
            stmt.returning(dead_letters.c.id, dead_letters.c.first_failed_at), row
        ).one()
        notices = _notify(conn, body, row, as_utc(returned.first_failed_at), failure.fault)
    letter_id = str(returned.id)
    log.error(
        "parked %s for %s after %d attempt(s): %s", letter_id, task, attempts, columns["message"]
    )
    if app is not None and notices:
        publish_committed(app, "operations", notices)
    return letter_id


def _notify(
    conn: Connection, body: object, row: dict[str, Any], since: datetime, fault: Fault
) -> list[Envelope]:
    """Write the letter's ``message.parked`` (``parked_notice``) in the letter's transaction."""
    notice = parked_notice(body, row["subject"], row["queue"], row["event_id"], since, fault)
    if notice is None:
        return []
    outbox = Outbox(conn)
    outbox.emit(notice)
    return outbox.emitted


def parked_notice(
    body: object,
    subject: str | None,
    queue: str,
    event_id: str | None,
    since: datetime,
    fault: Fault,
) -> Envelope | None:
    """The ``message.parked`` event telling the shop and orders that a message about order
    ``subject`` is parked since ``since``, on ``queue``, for ``fault``; caused by the parked event
    ``event_id`` when it is one.

    None for a body that names no order, for a message of a component that only watches orders
    (OBSERVER_QUEUES: a mail not sent delays no order), and for a parked ``message.parked``
    itself: a subscriber failing to hear one must not write another, and so on for ever.
    """
    if subject is None or not isinstance(body, dict) or queue in OBSERVER_QUEUES:
        return None
    if event_name(str(body.get("type", ""))) == "message.parked":
        return None
    notice = contracts.new_event(
        contracts.MessageParked(
            order_id=subject,
            # The broker may name a queue of its own (x-death): to the shop it is no step.
            queue=queue if queue in QUEUES else UNKNOWN_QUEUE,
            since=since,
            event_id=event_id,
            fault=fault,
        ),
        source=SOURCE,
        subject=subject,
    )
    # Caused by the parked event, when it is one: the saga view joins it to the rest.
    return notice if event_id is None else replace(notice, causationid=event_id)


def letter_of(row: Any) -> DeadLetter:
    """A row of ``dead_letters`` (a mapping by column name) as a DeadLetter, times in UTC."""
    values = {name: row[name] for name in DeadLetter.__dataclass_fields__}
    values["first_failed_at"] = as_utc(values["first_failed_at"])
    values["last_failed_at"] = as_utc(values["last_failed_at"])
    return DeadLetter(**values)


def _orders_named(body: object) -> list[str]:
    """The order ids a body names, as this system writes them: its subject and its data's
    ``order_id`` (each when a UUID), sorted, once each."""
    data = body.get("data") if isinstance(body, dict) else None
    named = {_id(body, "subject"), _id(data, "order_id")}
    return sorted(order_id for order_id in named if order_id is not None)


def _id(body: object, key: str) -> str | None:
    """The body's event id or subject, when it is a UUID as this system writes them (every
    other value, and a body that is not an object, leaves the column empty: the body says it)."""
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) and _UUID.fullmatch(value) else None


def _storable(value: object) -> bool:
    """Whether ``value`` is JSON PostgreSQL stores as it is: every string (keys included) text
    PostgreSQL and UTF-8 store, and every number finite (Celery's JSON reads NaN and Infinity,
    which PostgreSQL's json refuses and no JSON reader after it takes)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is None
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _escaped(text: str) -> str:
    """``text`` with what no database of ours can store written as an escape (NUL → ``\\x00``,
    a lone surrogate → ``\\ud800``)."""
    return _UNSTORABLE.sub(lambda match: ascii(match.group())[1:-1], text)


def _queue(task: str) -> str:
    try:
        return queue_of(task)
    except ValueError:
        return UNKNOWN_QUEUE


def _raw(body: object) -> str:
    """The body as ASCII text: JSON when it is JSON (escapes for anything not ASCII; NaN and
    Infinity as Python writes them, in text nobody parses as JSON again), else its repr (which
    escapes the same)."""
    try:
        return json.dumps(body)
    except (TypeError, ValueError):
        return _escaped(repr(body))
