"""The dead letters, the operators' side: list, show, replay and discard what workers parked.

Workers park through the messaging kit (workers.messaging.deadletters); operators look at the
letters and act on them here, from ``shoeshop dlq`` (workers.operations.dlq_cli) and the admin
pages (shop.web.admin). Every replay and discard is written to ``dead_letter_actions``, the audit
trail of operators' hands. Everything here reads and writes the operations database only, and
raises sqlalchemy.exc.SQLAlchemyError when it is away.

What an operator types to pick letters (an id, a queue, a status, a time or an age) is checked
here too (``is_letter_id``, ``read_filters``, ``parse_since``), once for the CLI and the admin
pages, so that nothing an operator can type reaches a database it would fail in (PostgreSQL
refuses a NUL even in a lookup) nor a datetime it would overflow.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from celery import Celery
from sqlalchemy import func, insert, select, update

from config.settings import OBSERVER_QUEUES, QUEUES, duration_in_words, get_settings
from workers.messaging.contracts import MessageReplayed, new_event
from workers.messaging.database import engine_for, transaction
from workers.messaging.deadletters import (
    DISCARDED,
    PARKED,
    REPLAYED,
    SOURCE,
    STATUSES,
    UNKNOWN_QUEUE,
    DeadLetter,
    letter_of,
)
from workers.messaging.envelope import UUID_PATTERN, Envelope, as_utc, utcnow
from workers.messaging.outbox import Outbox
from workers.messaging.publisher import send_to
from workers.messaging.tables import dead_letter_actions, dead_letters
from workers.messaging.unit_of_work import publish_committed

__all__ = [
    "ALL_STATUSES",
    "EARLIEST_SINCE",
    "PARKED",
    "QUEUE_NAMES",
    "STATUSES",
    "UNKNOWN_QUEUE",
    "Action",
    "DeadLetter",
    "DeadLetterNotFound",
    "Filters",
    "InvalidFilter",
    "InvalidFilters",
    "actions",
    "count_parked",
    "discard",
    "get",
    "is_letter_id",
    "letter_keys",
    "list_letters",
    "parse_since",
    "read_filters",
    "replay",
    "replay_all",
]

log = logging.getLogger(__name__)

QUEUE_NAMES = (*QUEUES, UNKNOWN_QUEUE)
"""Every queue a dead letter can be filed under: what ``--queue`` and ``?queue=`` take."""
# What ``--status`` and ``?status=`` take: one status, or every one.
ALL = "all"
ALL_STATUSES = (*STATUSES, ALL)
# No letter is older than the Unix epoch; a `since` before it is a typo (or a probe), and one
# far enough back overflows a datetime once it is converted to UTC.
EARLIEST_SINCE = datetime(1970, 1, 1, tzinfo=UTC)
_LETTER_ID = re.compile(UUID_PATTERN)
# An age: a whole number of seconds, minutes, hours or days, in ASCII digits ("٣d" is no age).
_AGE = re.compile(r"([0-9]{1,18})([smhd])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SINCE_FORMS = "an ISO 8601 time (UTC when it has no offset) or an age like 30m, 2h, 7d"


class DeadLetterNotFound(LookupError):
    """No dead letter has the id an operator asked for."""


class InvalidFilter(ValueError):
    """A filter an operator gave is not one this store reads: ``name`` is the filter's
    (``queue``, ``status``, ``since``), ``message`` what it must be, a fragment that follows the
    name ("must be one of …")."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name} {message}")
        self.name = name
        self.message = message


class InvalidFilters(ValueError):
    """Some filters are not ones this store reads: ``fields`` maps each one's name to what it
    must be."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name} {message}" for name, message in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Filters:
    """Which letters to list, as ``list_letters`` takes them."""

    queue: str | None = None
    since: datetime | None = None
    status: str | None = PARKED


def is_letter_id(text: str) -> bool:
    """Whether ``text`` is a dead letter's id as the store writes them: a lower-case UUID."""
    return _LETTER_ID.fullmatch(text) is not None


def parse_since(value: str, now: datetime) -> datetime:
    """When ``value`` says to list letters from, as an aware UTC datetime: an ISO 8601 time (UTC
    when it has no offset) or an age such as 30m, 2h, 7d back from ``now``. Raises InvalidFilter
    ("since") for anything else, and for a time before EARLIEST_SINCE or past what a datetime
    holds in UTC (the year 0001 at +14:00 is the year 0 in UTC; 9999-12-31 at -14:00 is 10000),
    an age reaching back further than EARLIEST_SINCE among them."""
    text = value.strip()
    out_of_range = InvalidFilter(
        "since",
        f"must be a time from {EARLIEST_SINCE:%Y-%m-%d} (UTC) to the year 9999, or an age "
        f"reaching back no further than {EARLIEST_SINCE:%Y-%m-%d}",
    )
    if age := _AGE.fullmatch(text):
        amount, unit = age.groups()
        seconds = int(amount) * _UNIT_SECONDS[unit]
        if seconds > (now - EARLIEST_SINCE).total_seconds():
            raise out_of_range
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter("since", f"must be {SINCE_FORMS}") from None
    try:
        moment = as_utc(moment).astimezone(UTC)
    except OverflowError:
        raise out_of_range from None
    if moment < EARLIEST_SINCE:
        raise out_of_range
    return moment


def read_filters(
    *, queue: str | None, status: str | None, since: str | None, now: datetime
) -> Filters:
    """The filters an operator typed (each None or empty when not given), checked: a queue of
    QUEUE_NAMES, a status of ALL_STATUSES (parked when not given), a since as ``parse_since``
    reads it. Raises InvalidFilters naming every one that is not."""
    wrong: dict[str, str] = {}
    if queue and queue not in QUEUE_NAMES:
        wrong["queue"] = f"must be one of {_listed(QUEUE_NAMES)}"
    status = status or PARKED
    if status not in ALL_STATUSES:
        wrong["status"] = f"must be one of {_listed(ALL_STATUSES)}"
    moment = None
    if since:
        try:
            moment = parse_since(since, now)
        except InvalidFilter as exc:
            wrong[exc.name] = exc.message
    if wrong:
        raise InvalidFilters(wrong)
    return Filters(queue=queue or None, since=moment, status=None if status == ALL else status)


def _listed(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}"


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


def letter_keys(event_ids: list[str]) -> set[tuple[str, str]]:
    """(event id, task) of every letter among these events, whatever its status: a parked one
    waits for an operator, a discarded one was given up on, a replayed one was sent again by
    an operator; none is for the redelivery sweep to send. Only the keys, not the rows."""
    query = select(dead_letters.c.event_id, dead_letters.c.task).where(
        dead_letters.c.event_id.in_(event_ids)
    )
    with engine_for("operations").connect() as conn:
        return {(row.event_id, row.task) for row in conn.execute(query)}


def parked(subject: str | None = None) -> list[DeadLetter]:
    """The parked letters, all of them (oldest last failure first) or only those about one order
    (``subject``: its id; oldest first failure first).

    Raises sqlalchemy.exc.SQLAlchemyError when the operations database is away.
    """
    query = select(dead_letters).where(dead_letters.c.status == PARKED)
    if subject is None:
        query = query.order_by(dead_letters.c.last_failed_at)
    else:
        query = query.where(dead_letters.c.subject == subject).order_by(
            dead_letters.c.first_failed_at
        )
    with engine_for("operations").connect() as conn:
        return [letter_of(row) for row in conn.execute(query).mappings()]


def count_parked() -> int:
    """How many letters are parked right now."""
    query = select(func.count()).select_from(dead_letters).where(dead_letters.c.status == PARKED)
    with engine_for("operations").connect() as conn:
        return int(conn.execute(query).scalar_one())


def get(letter_id: str) -> DeadLetter:
    """The letter with this id, whatever its status; raises DeadLetterNotFound (without asking
    the database when ``letter_id`` is no id the store writes)."""
    if not is_letter_id(letter_id):
        raise DeadLetterNotFound(letter_id)
    with engine_for("operations").connect() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).mappings()
        found = row.first()
    if found is None:
        raise DeadLetterNotFound(letter_id)
    return letter_of(found)


def actions(letter_id: str) -> list[Action]:
    """Every replay and discard of the letter, oldest first (empty for an unknown id)."""
    if not is_letter_id(letter_id):
        return []
    query = select(dead_letter_actions).where(dead_letter_actions.c.dead_letter_id == letter_id)
    with engine_for("operations").connect() as conn:
        rows = conn.execute(query.order_by(dead_letter_actions.c.seq)).mappings()
        return [
            Action(row["dead_letter_id"], row["action"], as_utc(row["at"]), row["outcome"])
            for row in rows
        ]


def replay(app: Celery, letter_id: str, *, force: bool = False) -> Action:
    """Send the original event to the original task; its inbox makes a second replay a no-op.

    Returns the recorded Action: "sent" (the letter becomes replayed), or "failed: …" when the
    letter was discarded, holds no event, the broker refused (the letter stays parked), or the
    event was written before the inbox horizon (``SHOESHOP_INBOX_RETENTION``) and ``force`` is
    not given: the inbox row that would make a repeat harmless may be pruned by then.
    Raises DeadLetterNotFound.
    """
    letter = get(letter_id)
    if letter.status == DISCARDED:
        return _record(letter_id, "replay", "failed: the letter was discarded")
    if letter.event is None:
        return _record(letter_id, "replay", "failed: the message was not an event; nothing to send")
    retention = timedelta(seconds=get_settings().inbox_retention_s)
    written = _written_at(letter.event)
    if not force and written is not None and written < utcnow() - retention:
        return _record(
            letter_id,
            "replay",
            f"failed: the event was written at {as_utc(written):%Y-%m-%d %H:%M} UTC, before the "
            f"inbox horizon ({duration_in_words(retention.total_seconds())}): a second effect is "
            "possible; replay it with --force to send it anyway",
        )
    try:
        send_to(app, letter.task, letter.event)
    except Exception as exc:  # broker away or a task no queue serves: recorded, letter stays
        return _record(letter_id, "replay", f"failed: {type(exc).__name__}: {exc}")
    # A letter of a component that only watches orders delayed none (deadletters.parked_notice).
    notice = None
    if letter.queue not in OBSERVER_QUEUES:
        notice = replayed_notice(letter.subject, letter.event_id)
    done = _record(letter_id, "replay", "sent", status=REPLAYED, notice=notice)
    if notice is not None:
        publish_committed(app, "operations", [notice])
    return done


def replayed_notice(subject: str | None, event_id: str | None) -> Envelope | None:
    """``message.replayed`` for order ``subject`` whose event ``event_id`` a letter held; None
    when the letter names no order or held no event id (each a UUID when set: deadletters)."""
    if subject is None or event_id is None:
        return None
    data = MessageReplayed(order_id=subject, event_id=event_id)
    return replace(new_event(data, source=SOURCE, subject=subject), causationid=event_id)


def replay_all(app: Celery, queue: str | None = None, *, force: bool = False) -> list[Action]:
    """Replay every parked letter (of one ``queue``), oldest last failure first."""
    return [replay(app, letter.id, force=force) for letter in list_letters(queue=queue)]


def _written_at(event: dict[str, Any]) -> datetime | None:
    """When the event was written (its envelope's time), if it says so readably."""
    try:
        return as_utc(msgspec.convert(event.get("time"), type=datetime))
    except msgspec.ValidationError:
        return None


def discard(letter_id: str) -> Action:
    """Give up on a letter for good; it stays on record, with who-did-what in the actions log.
    Raises DeadLetterNotFound."""
    get(letter_id)
    return _record(letter_id, "discard", "discarded", status=DISCARDED)


def _record(
    letter_id: str,
    action: str,
    outcome: str,
    *,
    status: str | None = None,
    notice: Envelope | None = None,
) -> Action:
    """Record an action on a letter (and its new status), with ``notice`` written to the
    operations outbox in the same transaction."""
    now = utcnow()
    with transaction("operations") as conn:
        if notice is not None:
            Outbox(conn).emit(notice)
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
