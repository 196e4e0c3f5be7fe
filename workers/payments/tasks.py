"""The payments component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from celery import Task
from sqlalchemy import Connection

from config.celery import app
from config.settings import get_settings
from workers.messaging import inbox
from workers.messaging.consumer import apply_and_publish, run_guarded
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.outbox import Outbox
from workers.payments import handlers
from workers.payments.gateway import PaymentGateway

COMPONENT = "payments"
T = TypeVar("T")


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    from workers.payments.http_gateway import HttpGateway  # only the payments worker needs it

    return HttpGateway(get_settings().gateway_url)


@app.task(name="payments.on_payment_requested", bind=True)
def on_payment_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _pay(self, envelope))


def _pay(task: Task, event: Envelope) -> None:
    _call_then_record(
        task, event, lambda: handlers.charge(gateway(), event), handlers.record_outcome
    )


@app.task(name="payments.on_refund_requested", bind=True)
def on_refund_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _refund(self, envelope))


def _refund(task: Task, event: Envelope) -> None:
    def call() -> str:
        with engine_for(COMPONENT).connect() as conn:
            return handlers.refund(gateway(), conn, event)

    _call_then_record(task, event, call, handlers.record_refund)


def _call_then_record(
    task: Task,
    event: Envelope,
    call: Callable[[], T],
    record: Callable[[Connection, Envelope, Outbox, T], None],
) -> None:
    """Call the gateway unless this task already applied the event, then record what it said
    in the component's unit of work. The call is outside the transaction (slow and remote) and
    idempotent by key; the inbox is checked first so a redelivered request does not even reach
    the gateway."""
    if inbox.seen(engine_for(COMPONENT), event.id, task.name):
        return
    said = call()
    apply_and_publish(
        task, COMPONENT, event, lambda conn, ev, outbox: record(conn, ev, outbox, said)
    )
