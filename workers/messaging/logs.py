"""Log lines that carry the order id, event id and correlation id of the event being handled."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from workers.messaging.envelope import Envelope


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the event's ids and puts them in the record's extras."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        prefix = " ".join(
            f"{key}={extra[key]}"
            for key in ("order_id", "event_id", "correlation_id", "task", "attempt")
        )
        return f"[{prefix}] {msg}", kwargs


def event_logger(logger: logging.Logger, event: Envelope, task: str, attempt: int) -> EventLogger:
    return EventLogger(
        logger,
        {
            "order_id": event.subject,
            "event_id": event.id,
            "correlation_id": event.correlationid,
            "task": task,
            "attempt": attempt,
        },
    )
