"""The payments component's Celery tasks: thin shells around its handlers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Task

from config.celery import app
from config.settings import get_settings
from workers.messaging import inbox
from workers.messaging.consumer import attempt_of, run_guarded
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.unit_of_work import apply_once, publish_committed
from workers.payments import handlers
from workers.payments.gateway import HttpGateway, PaymentGateway

COMPONENT = "payments"


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    return HttpGateway(get_settings().gateway_url)


@app.task(name="payments.on_payment_requested", bind=True)
def on_payment_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _pay(self, envelope))


def _pay(task: Task, event: Envelope) -> None:
    # The gateway call is outside the transaction (it is slow and remote); the inbox is checked
    # first so a redelivered request does not even reach the gateway.
    if inbox.seen(engine_for(COMPONENT), event.id, task.name):
        return
    result = handlers.charge(gateway(), event)
    emitted = apply_once(
        COMPONENT,
        task.name,
        event,
        lambda conn, ev, outbox: handlers.record_outcome(conn, ev, outbox, result),
        attempt_of(task),
    )
    publish_committed(task.app, COMPONENT, emitted)


@app.task(name="payments.on_refund_requested", bind=True)
def on_refund_requested(self: Task, event: dict[str, Any]) -> None:
    run_guarded(self, event, lambda envelope: _refund(self, envelope))


def _refund(task: Task, event: Envelope) -> None:
    engine = engine_for(COMPONENT)
    if inbox.seen(engine, event.id, task.name):
        return
    with engine.connect() as conn:
        gateway_refund_id = handlers.refund(gateway(), conn, event)
    emitted = apply_once(
        COMPONENT,
        task.name,
        event,
        lambda conn, ev, outbox: handlers.record_refund(conn, ev, outbox, gateway_refund_id),
        attempt_of(task),
    )
    publish_committed(task.app, COMPONENT, emitted)
