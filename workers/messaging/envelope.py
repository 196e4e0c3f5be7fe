"""The CloudEvents 1.0 envelope every event travels in, and its validation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from workers.messaging.errors import InvalidEvent, describe

SPEC_VERSION = "1.0"
TYPE_PREFIX = "shoeshop."
# Python's "$" also matches before a final line feed, and msgspec checks a pattern with Python's
# re; JSON Schema's "$" (ECMA-262) does not. Each pattern of the contracts ends with END, which
# is the end of the text in both: "Ada\n" is not a line.
END = r"(?!\n)$"


def whole(body: str) -> str:
    """A pattern that ``body`` must match from the first character to the last, in Python's re
    and in JSON Schema alike."""
    return f"^{body}{END}"


def unanchored(pattern: str) -> str:
    """What ``whole`` was given: the pattern without its anchors (``END`` or a plain "$"), to
    put inside another."""
    return pattern.removeprefix("^").removesuffix(END).removesuffix("$")


TYPE_PATTERN = whole(r"shoeshop\.[a-z_]+\.[a-z_]+\.v[1-9][0-9]*")
UUID_PATTERN = whole(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""An id this system mints: a UUID as ``str(uuid.uuid4())`` writes it, lower-case, hyphenated."""
# A component's path: /shop, /orders, /payments, /shipping (and /tests in the tests).
SOURCE_PATTERN = whole(r"/[a-z0-9_-]{1,50}")

Uuid = Annotated[str, msgspec.Meta(pattern=UUID_PATTERN)]
"""An id this system mints: a UUID, lower-case and hyphenated (every id column is VARCHAR(36))."""
UuidOrNone = Annotated[str, msgspec.Meta(pattern=whole(f"(?:|{unanchored(UUID_PATTERN)})"))]


class Wire(msgspec.Struct, frozen=True):
    """The envelope as it travels: what ``Envelope.from_dict`` accepts, strictly. Every id is a
    UUID as this system writes them (the subject is the order's id), the time an RFC 3339 time
    with its offset; an attribute the model does not name is ignored (CloudEvents extensions)."""

    specversion: Literal["1.0"]
    id: Uuid
    source: Annotated[str, msgspec.Meta(pattern=SOURCE_PATTERN)]
    type: Annotated[str, msgspec.Meta(pattern=TYPE_PATTERN)]
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    subject: Uuid
    data: dict[str, Any]
    datacontenttype: Literal["application/json"] = "application/json"
    # Empty when the event starts a saga (no cause, its own correlation).
    correlationid: UuidOrNone = ""
    causationid: UuidOrNone = ""
    # CloudEvents' distributed tracing extension (W3C Trace Context): absent from the events of
    # release 0.1.0 and from any written while tracing was off. A string, as every CloudEvents
    # extension; one that is not a W3C traceparent is kept as it came and read as no context
    # (workers.messaging.tracing): tracing never parks an order.
    traceparent: str = ""
    tracestate: str = ""


def event_name(type_: str) -> str:
    """A wire type's event name: ``shoeshop.order.placed.v2`` → ``order.placed``."""
    return type_.removeprefix(TYPE_PREFIX).rsplit(".", 1)[0]


def event_type(name: str, version: int = 1) -> str:
    """The wire type of a named event: ``order.placed`` becomes ``shoeshop.order.placed.v1``."""
    return f"{TYPE_PREFIX}{name}.v{version}"


# The times an event may carry: any a database stores as a timestamp once in UTC (a year of 1
# or 9999 with an offset crosses into year 0 or 10000, which PostgreSQL refuses), and well
# around any this shop writes.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0
        return EARLIEST - timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything this project stores is written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Envelope:
    """One immutable fact, as it is stored in an outbox and sent over the broker."""

    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=lambda: utcnow().isoformat())
    correlationid: str = ""
    causationid: str = ""
    datacontenttype: str = "application/json"
    specversion: str = SPEC_VERSION
    # The context of the span that created the event (workers.messaging.tracing.stamped), set
    # once and never rewritten by a re-send; empty while tracing is off.
    traceparent: str = ""
    tracestate: str = ""

    @property
    def name(self) -> str:
        """The type without prefix and version, e.g. ``payment.succeeded``."""
        return event_name(self.type)

    @property
    def occurred_at(self) -> datetime:
        """When it happened, aware: RFC 3339 read as msgspec reads it (``from_dict`` checked it;
        Python 3.11's fromisoformat refuses some of RFC 3339, a lower-case "z")."""
        moment: datetime = msgspec.convert(self.time, type=datetime)
        return moment

    def to_dict(self) -> dict[str, Any]:
        """The event as it is stored and sent: the CloudEvents attributes, the tracing
        extension only when there is one (an event without stays as release 0.1.0 wrote it)."""
        wire: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "correlationid": self.correlationid,
            "causationid": self.causationid,
            "data": self.data,
        }
        if self.traceparent:
            wire["traceparent"] = self.traceparent
        if self.tracestate:
            wire["tracestate"] = self.tracestate
        return wire

    @classmethod
    def from_dict(cls, raw: object) -> Envelope:
        """Parse and check a received event against the envelope's model (``Wire``); raise
        InvalidEvent naming the attribute that breaks it and why, never its value."""
        try:
            wire = msgspec.convert(raw, type=Wire, strict=True)
        except msgspec.ValidationError as exc:
            raise InvalidEvent(f"the envelope is invalid: {describe(exc)}") from None
        if not EARLIEST <= _in_utc(wire.time) <= LATEST:
            raise InvalidEvent(
                f"the envelope is invalid: time: not between {EARLIEST.year} and {LATEST.year}"
            )
        assert isinstance(raw, dict)  # a Wire was read from it
        return cls(
            type=wire.type,
            source=wire.source,
            subject=wire.subject,
            data=wire.data,
            id=wire.id,
            # The time as it was written: the event is stored and re-sent unchanged.
            time=raw["time"],
            correlationid=wire.correlationid,
            causationid=wire.causationid,
            datacontenttype=wire.datacontenttype,
            traceparent=wire.traceparent,
            tracestate=wire.tracestate,
        )
