"""Runs a subscriber task: parse, apply once, publish; retries transient faults, parks the rest."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from config.settings import Settings, get_settings
from workers.messaging import deadletters
from workers.messaging.broker_dead import is_amqp
from workers.messaging.envelope import Envelope
from workers.messaging.errors import PermanentError, TransientError, UnknownEventType
from workers.messaging.logs import event_logger
from workers.messaging.subscriptions import subscribers_of
from workers.messaging.unit_of_work import Handler, apply_once, publish_committed
from workers.messaging.versions import parse

log = logging.getLogger(__name__)

# A database blip (locked, connection dropped) passes: retry it like any other transient fault.
RETRYABLE: tuple[type[BaseException], ...] = (TransientError, OperationalError)


def backoff_delay(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: spreads retries so a recovering service is not stampeded."""
    ceiling = min(settings.retry_max_delay_s, settings.retry_base_delay_s * 2**attempt)
    return (rng or random).uniform(ceiling / 2, ceiling)


def attempt_of(task: Task) -> int:
    """This delivery's attempt number: 1 for the first, 2 for the first retry, and so on."""
    return int(task.request.retries) + 1


def consume(task: Task, body: object, component: str, handler: Handler) -> None:
    """The whole life of one delivery of an event to one subscriber task."""
    run_guarded(task, body, lambda event: apply_and_publish(task, component, event, handler))


def run_guarded(task: Task, body: object, work: Callable[[Envelope], None]) -> None:
    """Decode the event, read it as its current version and run ``work`` with it; turn each
    failure into a retry or a dead letter.

    ``work`` gets the envelope with the current type and data validated by that type's model
    (see versions.parse). A body that is no event, a type this task does not hear, or data that
    breaks the model (InvalidEvent, UnknownEventType) is parked at once, as it was received.
    """
    attempts = attempt_of(task)
    try:
        event = Envelope.from_dict(body)
        _expect_subscriber(event, task.name)
        event = parse(event)
    except PermanentError as exc:
        deadletters.park(task.name, body, exc, attempts)
        return
    logger = event_logger(log, event, task.name, attempts)
    try:
        work(event)
        # Celery's "succeeded" line that follows carries the same ids at INFO (see logs).
        logger.debug("handled %s", event.name)
    except PermanentError as exc:
        logger.error("permanent failure, parking: %s", exc)
        deadletters.park(task.name, body, exc, attempts)
    except Exception as exc:
        _retry_or_park(task, body, exc, attempts, logger)


def _expect_subscriber(event: Envelope, task_name: str) -> None:
    # A valid event of a type this task does not subscribe to would otherwise be read as if it
    # were one it does: a misrouted message is a permanent fault, never a guess.
    if task_name not in subscribers_of(event.type):
        raise UnknownEventType(f"{task_name} does not handle events of type {event.type!r}")


def apply_and_publish(task: Task, component: str, event: Envelope, handler: Handler) -> None:
    """Apply the event once in the component's unit of work, then publish what it emitted."""
    emitted = apply_once(component, task.name, event, handler, attempt_of(task))
    publish_committed(task.app, component, emitted)


def _retry_or_park(
    task: Task, body: object, exc: Exception, attempts: int, logger: logging.LoggerAdapter[Any]
) -> None:
    settings = get_settings()
    if attempts > settings.max_retries:
        logger.error("still failing after %d attempts, parking: %r", attempts, exc)
        deadletters.park(task.name, body, exc, attempts)
        return
    delay = backoff_delay(attempts - 1, settings)
    if is_amqp(str(task.app.conf.broker_url)):
        # RabbitMQ's native delayed delivery counts whole seconds and refuses less than one.
        delay = max(delay, 1.0)
    kind = "transient" if isinstance(exc, RETRYABLE) else "unexpected"
    logger.warning("%s failure, retry %d in %.1fs: %r", kind, attempts, delay, exc)
    raise task.retry(exc=exc, countdown=delay, max_retries=settings.max_retries + 1)
