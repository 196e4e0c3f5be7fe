"""Dead letters: messages that failed for good, parked with everything needed to replay them."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from workers.messaging.database import engine_for
from workers.messaging.envelope import utcnow
from workers.messaging.subscriptions import queue_of
from workers.messaging.tables import dead_letters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    event_id: str | None
    subject: str | None
    task: str
    queue: str
    event: dict[str, Any] | None
    exception: str
    message: str
    traceback: str
    attempts: int
    status: str


def park(task: str, body: object, exc: BaseException, attempts: int) -> str:
    """Store a failed message with its reason; returns the dead letter's id."""
    now = utcnow()
    event = body if isinstance(body, dict) else None
    letter_id = str(uuid.uuid4())
    with engine_for("operations").begin() as conn:
        conn.execute(
            insert(dead_letters).values(
                id=letter_id,
                event_id=_text(event, "id"),
                subject=_text(event, "subject"),
                task=task,
                queue=_queue(task),
                event=event,
                raw=None if event is not None else _raw(body),
                exception=type(exc).__name__,
                message=str(exc),
                traceback="".join(traceback.format_exception(exc)),
                attempts=attempts,
                first_failed_at=now,
                last_failed_at=now,
                status="parked",
            )
        )
    log.error("parked %s for %s after %d attempt(s): %s", letter_id, task, attempts, exc)
    return letter_id


def parked(subject: str | None = None) -> list[DeadLetter]:
    query = select(dead_letters).where(dead_letters.c.status == "parked")
    if subject is not None:
        query = query.where(dead_letters.c.subject == subject)
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letters.c.last_failed_at)).mappings()
        return [
            DeadLetter(**{name: row[name] for name in DeadLetter.__dataclass_fields__})
            for row in rows
        ]


def _text(event: dict[str, Any] | None, key: str) -> str | None:
    if event is None or event.get(key) is None:
        return None
    return str(event[key])[:100]


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
