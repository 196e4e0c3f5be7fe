"""The payments component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from celery import Task

from config.celery import app
from config.settings import get_settings
from workers.messaging import inbox
from workers.messaging.consumer import apply_and_publish, run_guarded
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.payments import handlers
from workers.payments.gateway import PaymentGateway

COMPONENT = "payments"
T = TypeVar("T")


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    from workers.payments.http_gateway import HttpGateway  # only the payments worker needs httpx

    return HttpGateway(get_settings().gateway_url)


@app.task(name="payments.on_payment_requested", bind=True)
def on_payment_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _pay(self, envelope))


def _pay(task: Task, event: Envelope) -> None:
    result = _unless_applied(task, event, lambda: handlers.charge(gateway(), event))
    if result is not None:
        apply_and_publish(
            task,
            COMPONENT,
            event,
            lambda conn, ev, outbox: handlers.record_outcome(conn, ev, outbox, result),
        )


@app.task(name="payments.on_refund_requested", bind=True)
def on_refund_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _refund(self, envelope))


def _refund(task: Task, event: Envelope) -> None:
    def call() -> str:
        with engine_for(COMPONENT).connect() as conn:
            return handlers.refund(gateway(), conn, event)

    refund_id = _unless_applied(task, event, call)
    if refund_id is not None:
        apply_and_publish(
            task,
            COMPONENT,
            event,
            lambda conn, ev, outbox: handlers.record_refund(conn, ev, outbox, refund_id),
        )


def _unless_applied(task: Task, event: Envelope, call: Callable[[], T]) -> T | None:
    """Call the gateway unless this task already applied the event. The call is outside the
    transaction (slow and remote) and idempotent by key; the inbox is checked first so a
    redelivered request does not even reach the gateway."""
    if inbox.seen(engine_for(COMPONENT), event.id, task.name):
        return None
    return call()
