"""The worker's message consumer, changed in one respect: a body it cannot decode is parked."""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

from workers.messaging import deadletters

log = logging.getLogger(__name__)


class ParkingConsumer(Consumer):  # type: ignore[misc]  # celery ships no type hints
    """Celery logs and acknowledges a message it cannot decode (so it cannot loop); it is then
    gone. Parking it first keeps the promise that nothing is dropped silently."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        queue = str((message.delivery_info or {}).get("routing_key") or deadletters.UNKNOWN_QUEUE)
        try:
            deadletters.park_undecodable(queue, message.body, exc)
        except Exception:  # the dead-letter store is away: Celery's log line is all that is left
            log.exception("could not park an undecodable message from %s", queue)
        super().on_decode_error(message, exc)
