"""The dead letters, the operators' side: list, show, replay and discard what workers parked.

Workers park through the messaging kit (workers.messaging.deadletters); operators look at the
letters and act on them here, from ``shoeshop dlq`` (workers.operations.dlq_cli) and the admin
pages (shop.web.admin). Every replay and discard is written to ``dead_letter_actions``, the audit
trail of operators' hands. Everything here reads and writes the operations database only, and
raises sqlalchemy.exc.SQLAlchemyError when it is away.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from sqlalchemy import func, insert, select, update

from workers.messaging.database import engine_for, transaction
from workers.messaging.deadletters import (
    DISCARDED,
    PARKED,
    REPLAYED,
    STATUSES,
    DeadLetter,
    letter_of,
)
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.publisher import send_to
from workers.messaging.tables import dead_letter_actions, dead_letters

__all__ = [
    "PARKED",
    "STATUSES",
    "Action",
    "DeadLetter",
    "DeadLetterNotFound",
    "actions",
    "count_parked",
    "discard",
    "get",
    "list_letters",
    "parked_keys",
    "replay",
    "replay_all",
]

log = logging.getLogger(__name__)


class DeadLetterNotFound(LookupError):
    """No dead letter has the id an operator asked for."""


@dataclass(frozen=True)
class Action:
    """One replay or discard of a letter: ``action`` is "replay" or "discard", ``at`` an aware
    UTC datetime, ``outcome`` "sent", "discarded" or "failed: <reason>"."""

    dead_letter_id: str
    action: str
    at: datetime
    outcome: str

    @property
    def ok(self) -> bool:
        """False when the action failed (the letter then stays as it was)."""
        return not self.outcome.startswith("failed")

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``ok``, the time as an ISO 8601 string: JSON-ready."""
        return {**asdict(self), "at": self.at.isoformat(), "ok": self.ok}


def list_letters(
    *, queue: str | None = None, since: datetime | None = None, status: str | None = PARKED
) -> list[DeadLetter]:
    """Dead letters, oldest last failure first: of one ``queue`` (a component's), failed last at
    or after ``since`` (an aware datetime), in one ``status`` (``None``: every status)."""
    query = select(dead_letters)
    if status is not None:
        query = query.where(dead_letters.c.status == status)
    if queue is not None:
        query = query.where(dead_letters.c.queue == queue)
    if since is not None:
        query = query.where(dead_letters.c.last_failed_at >= since.astimezone(UTC))
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letters.c.last_failed_at)).mappings()
        return [letter_of(row) for row in rows]


def parked_keys(event_ids: list[str]) -> set[tuple[str, str]]:
    """(event id, task) of the parked letters among these events: only the keys, not the rows."""
    query = select(dead_letters.c.event_id, dead_letters.c.task).where(
        dead_letters.c.status == PARKED, dead_letters.c.event_id.in_(event_ids)
    )
    with engine_for("operations").connect() as conn:
        return {(row.event_id, row.task) for row in conn.execute(query)}


def count_parked() -> int:
    """How many letters are parked right now."""
    query = select(func.count()).select_from(dead_letters).where(dead_letters.c.status == PARKED)
    with engine_for("operations").connect() as conn:
        return int(conn.execute(query).scalar_one())


def get(letter_id: str) -> DeadLetter:
    """The letter with this id, whatever its status; raises DeadLetterNotFound."""
    with engine_for("operations").connect() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).mappings()
        found = row.first()
    if found is None:
        raise DeadLetterNotFound(letter_id)
    return letter_of(found)


def actions(letter_id: str) -> list[Action]:
    """Every replay and discard of the letter, oldest first (empty for an unknown id)."""
    query = select(dead_letter_actions).where(dead_letter_actions.c.dead_letter_id == letter_id)
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letter_actions.c.seq)).mappings()
        return [
            Action(row["dead_letter_id"], row["action"], as_utc(row["at"]), row["outcome"])
            for row in rows
        ]


def replay(app: Celery, letter_id: str) -> Action:
    """Send the original event to the original task; its inbox makes a second replay a no-op.

    Returns the recorded Action: "sent" (the letter becomes replayed), or "failed: …" when the
    letter was discarded, holds no event, or the broker refused (the letter stays parked).
    Raises DeadLetterNotFound.
    """
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
    """Replay every parked letter (of one ``queue``), oldest last failure first."""
    return [replay(app, letter.id) for letter in list_letters(queue=queue)]


def discard(letter_id: str) -> Action:
    """Give up on a letter for good; it stays on record, with who-did-what in the actions log.
    Raises DeadLetterNotFound."""
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
