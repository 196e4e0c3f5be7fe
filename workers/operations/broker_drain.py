"""The drain of RabbitMQ's own dead letters: what the broker moved to ``shoeshop.dead`` (a
delivery limit reached, a rejection) is parked in the dead letters, so operators have one place
to look; but for beat's nudges that expired before a worker took them (a worker down, a queue
long), which are dropped: the next nudge comes, and the deadlines are rows. The relay runs it on
every sweep on RabbitMQ; ``shoeshop dlq drain-broker`` by hand.
The route itself (exchange, queue, queue arguments) is the kit's: workers.messaging.broker_dead.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery
from kombu.message import Message

from workers.messaging import deadletters
from workers.messaging.broker_dead import dead_queue, is_amqp

log = logging.getLogger(__name__)

# One drain takes at most this many messages, so one sweep never holds the store for long.
DRAIN_BATCH = 500


def drain(app: Celery, limit: int = DRAIN_BATCH) -> int:
    """Park every message waiting in ``shoeshop.dead``, at most ``limit``; returns how many were
    parked (0 on Redis, which has no dead-letter exchange). Raises what kombu raises when the
    broker is away, and sqlalchemy.exc.SQLAlchemyError when the operations database is; a
    message is acknowledged only once parked, so it then waits for the next drain."""
    if not is_amqp(str(app.conf.broker_url)):
        return 0  # Redis has no dead-letter exchange: the consumer parks everything itself
    moved = dropped = 0
    nudges = beat_tasks(app)
    with app.connection_for_write() as connection:
        queue = dead_queue().bind(connection.default_channel)  # type: ignore[no-untyped-call]
        queue.declare()
        while moved + dropped < limit:
            message = queue.get(no_ack=False, accept=["json"])
            if message is None:
                break
            if expired_nudge(message, nudges):
                dropped += 1
            else:
                _park(message)
                moved += 1
            # Acknowledged only once parked: a crash here leaves the message for the next drain.
            message.ack()
    if dropped:
        log.info("dropped %d expired beat nudge(s) the broker dead-lettered", dropped)
    if moved:
        log.warning("moved %d message(s) the broker dead-lettered into the dead letters", moved)
    return moved


def beat_tasks(app: Celery) -> frozenset[str]:
    """The names of the tasks beat sends (``beat_schedule``): timers' nudges, each sent with an
    expiry so that a nudge nobody took in time is not run late."""
    return frozenset(str(entry["task"]) for entry in (app.conf.beat_schedule or {}).values())


def expired_nudge(message: Message, nudges: frozenset[str]) -> bool:
    """Whether the broker dead-lettered ``message`` only because it expired, and it is one of
    beat's nudges: the next comes within its interval and the deadlines it sweeps are rows in
    the databases, so nothing is lost and there is nothing for an operator to replay."""
    headers: dict[str, Any] = dict(message.headers or {})
    deaths = headers.get("x-death") or []
    expired = bool(deaths) and all(death.get("reason") == "expired" for death in deaths)
    return expired and str(headers.get("task")) in nudges


def _park(message: Message) -> None:
    headers: dict[str, Any] = dict(message.headers or {})
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}
    task = str(headers.get("task") or "unknown")
    queue = str(first.get("queue") or deadletters.UNKNOWN_QUEUE)
    attempts = int(headers.get("x-delivery-count") or 0) + 1
    reason = json.dumps(deaths, default=str)
    deadletters.park_rejected(task, queue, _event_of(message), reason, attempts)


def _event_of(message: Message) -> object:
    """The event a Celery task message carried: the first positional argument."""
    try:
        body = message.decode()  # type: ignore[no-untyped-call]
    except Exception:  # not JSON, or content we refuse to decode: keep the raw bytes' repr
        return repr(message.body)
    if isinstance(body, list) and body and isinstance(body[0], list) and body[0]:
        return body[0][0]
    return body
