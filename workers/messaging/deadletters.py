"""Dead letters: messages that failed for good, parked with everything needed to replay them."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from sqlalchemy import func, insert, select, update

from workers.messaging.database import engine_for, transaction, upsert_insert
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.publisher import send_to
from workers.messaging.subscriptions import queue_of
from workers.messaging.tables import dead_letter_actions, dead_letters

log = logging.getLogger(__name__)

PARKED, REPLAYED, DISCARDED = "parked", "replayed", "discarded"
STATUSES = (PARKED, REPLAYED, DISCARDED)


class DeadLetterNotFound(LookupError):
    """No dead letter has the id an operator asked for."""


@dataclass(frozen=True)
class DeadLetter:
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
        data = asdict(self)
        data["first_failed_at"] = self.first_failed_at.isoformat()
        data["last_failed_at"] = self.last_failed_at.isoformat()
        return data


@dataclass(frozen=True)
class Action:
    dead_letter_id: str
    action: str
    at: datetime
    outcome: str

    @property
    def ok(self) -> bool:
        return not self.outcome.startswith("failed")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat(), "ok": self.ok}


# The task an undecodable message was meant for is unknown: its name is inside the message.
UNDECODABLE_TASK = "(undecodable)"


def park(
    task: str,
    body: object,
    exc: BaseException,
    attempts: int,
    first_failed_at: datetime | None = None,
) -> str:
    """Store a failed message with its reason and traceback; returns the dead letter's id.
    ``first_failed_at`` is when its first attempt failed (now, when not given)."""
    detail = "".join(traceback.format_exception(exc))
    return _park(
        task, _queue(task), body, type(exc).__name__, str(exc), detail, attempts, first_failed_at
    )


def park_rejected(task: str, queue: str, body: object, reason: str, attempts: int) -> str:
    """Store a message the broker dead-lettered (delivery limit, rejection) with its x-death."""
    note = "dead-lettered by the broker; no traceback in this process"
    return _park(task, queue, body, "RejectedByBroker", reason, note, attempts)


def park_undecodable(queue: str, raw: bytes | str, exc: BaseException) -> str:
    """Store a message no task could even read (not JSON, a forbidden content type)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    detail = "".join(traceback.format_exception(exc))
    return _park(UNDECODABLE_TASK, queue, text, type(exc).__name__, str(exc), detail, 1)


def _park(
    task: str,
    queue: str,
    body: object,
    exception: str,
    message: str,
    detail: str,
    attempts: int,
    first_failed_at: datetime | None = None,
) -> str:
    now = utcnow()
    event = body if isinstance(body, dict) else None
    failure = {"exception": exception[:200], "message": message, "traceback": detail}
    with transaction("operations") as conn:
        stmt = upsert_insert(conn, dead_letters)
        # The same event failing again for the same task (a replay, or two workers parking it at
        # once) lands on its one row: attempts add up, the first failure time stays. A body that
        # is not an event has no event_id, and NULLs never conflict: each is its own row.
        stmt = stmt.on_conflict_do_update(
            index_elements=[dead_letters.c.event_id, dead_letters.c.task],
            set_={
                **failure,
                "attempts": dead_letters.c.attempts + stmt.excluded.attempts,
                "last_failed_at": stmt.excluded.last_failed_at,
                "status": PARKED,
            },
        )
        row = {
            **failure,
            "id": str(uuid.uuid4()),
            "event_id": _text(event, "id", 36),
            "subject": _text(event, "subject"),
            "task": task,
            "queue": queue,
            "event": event,
            "raw": None if event is not None else _raw(body),
            "attempts": attempts,
            "first_failed_at": first_failed_at or now,
            "last_failed_at": now,
            "status": PARKED,
        }
        letter_id = str(conn.execute(stmt.returning(dead_letters.c.id), row).scalar_one())
    log.error("parked %s for %s after %d attempt(s): %s", letter_id, task, attempts, message)
    return letter_id


def list_letters(
    *, queue: str | None = None, since: datetime | None = None, status: str | None = PARKED
) -> list[DeadLetter]:
    """Dead letters, oldest failure first; ``status=None`` lists every status."""
    query = select(dead_letters)
    if status is not None:
        query = query.where(dead_letters.c.status == status)
    if queue is not None:
        query = query.where(dead_letters.c.queue == queue)
    if since is not None:
        query = query.where(dead_letters.c.last_failed_at >= since.astimezone(UTC))
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letters.c.last_failed_at)).mappings()
        return [_letter(row) for row in rows]


def parked(subject: str | None = None) -> list[DeadLetter]:
    """Parked letters, optionally only those about one order (their subject)."""
    if subject is None:
        return list_letters()
    query = select(dead_letters).where(
        dead_letters.c.status == PARKED, dead_letters.c.subject == subject
    )
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letters.c.first_failed_at)).mappings()
        return [_letter(row) for row in rows]


def parked_keys(event_ids: list[str]) -> set[tuple[str, str]]:
    """(event id, task) of the parked letters among these events: only the keys, not the rows."""
    query = select(dead_letters.c.event_id, dead_letters.c.task).where(
        dead_letters.c.status == PARKED, dead_letters.c.event_id.in_(event_ids)
    )
    with engine_for("operations").connect() as conn:
        return {(row.event_id, row.task) for row in conn.execute(query)}


def count_parked() -> int:
    query = select(func.count()).select_from(dead_letters).where(dead_letters.c.status == PARKED)
    with engine_for("operations").connect() as conn:
        return int(conn.execute(query).scalar_one())


def get(letter_id: str) -> DeadLetter:
    with engine_for("operations").connect() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).mappings()
        found = row.first()
    if found is None:
        raise DeadLetterNotFound(letter_id)
    return _letter(found)


def actions(letter_id: str) -> list[Action]:
    query = select(dead_letter_actions).where(dead_letter_actions.c.dead_letter_id == letter_id)
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letter_actions.c.seq)).mappings()
        return [
            Action(row["dead_letter_id"], row["action"], as_utc(row["at"]), row["outcome"])
            for row in rows
        ]


def replay(app: Celery, letter_id: str) -> Action:
    """Send the original event to the original task; its inbox makes a second replay a no-op."""
    letter = get(letter_id)
    if letter.status == DISCARDED:
        return _record(letter_id, "replay", "failed: the letter was discarded")
    if letter.event is None:
        return _record(letter_id, "replay", "failed: the message was not an event; nothing to send")
    try:
        send_to(app, letter.task, letter.event)
    except Exception as exc:  # broker away or a task no queue serves: recorded, letter stays
        return _record(letter_id, "replay", f"failed: {type(exc).__name__}: {exc}")
    return _record(letter_id, "replay", "sent", status=REPLAYED)


def replay_all(app: Celery, queue: str | None = None) -> list[Action]:
    return [replay(app, letter.id) for letter in list_letters(queue=queue)]


def discard(letter_id: str) -> Action:
    """Give up on a letter for good; it stays on record, with who-did-what in the actions log."""
    get(letter_id)
    return _record(letter_id, "discard", "discarded", status=DISCARDED)


def _record(letter_id: str, action: str, outcome: str, *, status: str | None = None) -> Action:
    now = utcnow()
    with transaction("operations") as conn:
        if status is not None:
            conn.execute(
                update(dead_letters).where(dead_letters.c.id == letter_id).values(status=status)
            )
        conn.execute(
            insert(dead_letter_actions).values(
                dead_letter_id=letter_id, action=action, at=now, outcome=outcome
            )
        )
    log.info("dead letter %s: %s -> %s", letter_id, action, outcome)
    return Action(letter_id, action, now, outcome)


def _letter(row: Any) -> DeadLetter:
    values = {name: row[name] for name in DeadLetter.__dataclass_fields__}
    values["first_failed_at"] = as_utc(values["first_failed_at"])
    values["last_failed_at"] = as_utc(values["last_failed_at"])
    return DeadLetter(**values)


def _text(event: dict[str, Any] | None, key: str, limit: int = 100) -> str | None:
    if event is None or event.get(key) is None:
        return None
    return str(event[key])[:limit]


def _queue(task: str) -> str:
    try:
        return queue_of(task)
    except ValueError:
        return "unknown"


def _raw(body: object) -> str:
    try:
        return json.dumps(body)
    except (TypeError, ValueError):
        return repr(body)
