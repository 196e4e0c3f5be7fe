"""The CloudEvents 1.0 envelope every event travels in, and its validation."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from workers.messaging.errors import InvalidEvent

SPEC_VERSION = "1.0"
TYPE_PREFIX = "shoeshop."
_TYPE_PATTERN = re.compile(r"^shoeshop\.[a-z_]+\.[a-z_]+\.v[1-9][0-9]*$")
_REQUIRED = ("specversion", "id", "source", "type", "time", "subject", "data")


def event_type(name: str, version: int = 1) -> str:
    """The wire type of a named event: ``order.placed`` becomes ``shoeshop.order.placed.v1``."""
    return f"{TYPE_PREFIX}{name}.v{version}"


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

    @property
    def name(self) -> str:
        """The type without prefix and version, e.g. ``payment.succeeded``."""
        return self.type.removeprefix(TYPE_PREFIX).rsplit(".", 1)[0]

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_dict(cls, raw: object) -> Envelope:
        """Parse and check a received event; raise InvalidEvent naming what is wrong."""
        if not isinstance(raw, dict):
            raise InvalidEvent(f"an event must be a JSON object, got {type(raw).__name__}")
        missing = [name for name in _REQUIRED if name not in raw]
        if missing:
            raise InvalidEvent(f"event is missing {', '.join(missing)}")
        if raw["specversion"] != SPEC_VERSION:
            raise InvalidEvent(f"specversion must be {SPEC_VERSION}, got {raw['specversion']!r}")
        if not isinstance(raw["type"], str) or not _TYPE_PATTERN.match(raw["type"]):
            raise InvalidEvent(f"type {raw['type']!r} is not a shoeshop.<name>.v<N> type")
        if not isinstance(raw["data"], dict):
            raise InvalidEvent("data must be a JSON object")
        _check_uuid(raw["id"], "id")
        try:
            datetime.fromisoformat(str(raw["time"]))
        except ValueError:
            raise InvalidEvent(f"time {raw['time']!r} is not an ISO-8601 timestamp") from None
        return cls(
            type=raw["type"],
            source=str(raw["source"]),
            subject=str(raw["subject"]),
            data=raw["data"],
            id=raw["id"],
            time=str(raw["time"]),
            correlationid=str(raw.get("correlationid", "")),
            causationid=str(raw.get("causationid", "")),
            datacontenttype=str(raw.get("datacontenttype", "application/json")),
        )


def _check_uuid(value: object, name: str) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError:
        raise InvalidEvent(f"{name} {value!r} is not a UUID") from None
