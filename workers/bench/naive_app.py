"""The naive shop's worker side: one Celery chain per order, as a good Celery tutorial writes it.

create order → charge → ship → mark shipped, each a task on the queue of the component that
does that step in the system, each writing to the naive shop's database (naive_store), the
charge calling the same gateway simulator with an idempotency key as the system does. Celery's
own retries (``autoretry_for``, ``retry_backoff``) for transient faults; no outbox, inbox, event
store or dead letters: a message lost, or a task out of retries, leaves its order where it is.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import chain
from celery.exceptions import Ignore
from sqlalchemy.exc import OperationalError

from config.settings import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_MAX_DELAY_S, get_settings
from workers.bench import naive_store
from workers.bench.transport import baseline_app, quiet_task_lines
from workers.messaging.errors import TransientError
from workers.payments.gateway import Charged, PaymentGateway

QUEUES = ("shop", "orders", "payments", "shipping")
PREFIX = "naive_"
log = logging.getLogger(__name__)

app = baseline_app(
    "shoeshop-bench-naive", "shoeshop-naive", [PREFIX + q for q in QUEUES], PREFIX + "shop"
)
quiet_task_lines()

# Celery's own retry policy with the system's budget: exponential backoff from a second, with
# jitter, capped at the system's longest delay, as many retries as the system allows. The
# gateway unreachable and SQLite busy are TransientErrors; a database blip is an
# OperationalError. Anything else fails the task, and the chain stops there.
RETRY = {
    "autoretry_for": (TransientError, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": int(DEFAULT_RETRY_MAX_DELAY_S),
    "retry_jitter": True,
    "max_retries": DEFAULT_MAX_RETRIES,
}


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    """The system's own gateway client, made when the first charge needs it."""
    from workers.payments.http_gateway import HttpGateway

    return HttpGateway(get_settings().gateway_url)


@app.task(name="naive.create_order", **RETRY)  # type: ignore[untyped-decorator]
def create_order(order_id: str) -> None:
    """Take the order up: PAYMENT_PENDING, and its payment made (the orders step)."""
    naive_store.create_order(order_id)


@app.task(name="naive.charge", **RETRY)  # type: ignore[untyped-decorator]
def charge(order_id: str) -> None:
    """Charge the card at the gateway, keyed by the payment id (the payments step). A decline
    cancels the order, puts its stock back and ends the chain there."""
    payment = naive_store.payment_of(order_id)
    result = gateway().charge(
        idempotency_key=payment.id,
        order_id=order_id,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        source=payment.token,
    )
    if isinstance(result, Charged):
        naive_store.record_charge(payment, result.charge_id)
        return
    naive_store.record_decline(payment, result.reason)
    log.info("order %s: payment declined (%s)", order_id, result.reason)
    raise Ignore()  # acknowledged, and the rest of the chain is not sent


@app.task(name="naive.ship", **RETRY)  # type: ignore[untyped-decorator]
def ship(order_id: str) -> None:
    """Dispatch the parcel (the shipping step)."""
    naive_store.ship(order_id)


@app.task(name="naive.mark_shipped", **RETRY)  # type: ignore[untyped-decorator]
def mark_shipped(order_id: str) -> None:
    """SHIPPED, and the stock counted as sold (the shop's step)."""
    naive_store.mark_shipped(order_id)


def start_chain(order_id: str) -> None:
    """Send the chain's first message; each worker sends the next one when its task succeeds."""
    chain(
        create_order.si(order_id).set(queue=PREFIX + "orders"),
        charge.si(order_id).set(queue=PREFIX + "payments"),
        ship.si(order_id).set(queue=PREFIX + "shipping"),
        mark_shipped.si(order_id).set(queue=PREFIX + "shop"),
    ).apply_async()
