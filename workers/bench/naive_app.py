"""The naive shop's worker side: one Celery chain per order, as a good Celery tutorial writes it.

create order → charge → ship → mark shipped, each a task on the queue of the component that
does that step in the system, each writing to the naive shop's database (naive_store), the
charge calling the same gateway simulator with an idempotency key as the system does. Celery's
own retries (``autoretry_for``, ``retry_backoff``) for transient faults; no outbox, inbox, event
store or dead letters: a message lost, or a task out of retries, leaves its order where it is.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from celery import Task, chain
from celery.exceptions import Ignore
from sqlalchemy.exc import OperationalError

from config.settings import ConfigurationError, get_settings
from workers.bench import naive_store
from workers.bench.transport import baseline_app, quiet_task_lines
from workers.messaging.errors import TransientError
from workers.payments.gateway import Charged, PaymentGateway

QUEUES = ("shop", "orders", "payments", "shipping")
PREFIX = "naive_"
log = logging.getLogger(__name__)

# The faults bench's duplicate-delivery hook (workers/bench/faults.py): "1" sends every message
# of every chain twice, with the same task id, as a broker redelivering or a publisher re-sending
# would. Off unless set; refused with SHOESHOP_ENV=production, as SHOESHOP_CHAOS_REORDER is.
DUPLICATE_ENV = "SHOESHOP_NAIVE_DUPLICATE"


@lru_cache(maxsize=1)
def duplicate_sends() -> bool:
    """Whether the duplicate-delivery hook is on in this process. Raises ConfigurationError
    when it is asked for in production, or set to anything but "", "0" or "1"."""
    raw = os.environ.get(DUPLICATE_ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise ConfigurationError(f"{DUPLICATE_ENV} must be unset, 0 (off) or 1 (on), not {raw!r}")
    if raw == "1" and get_settings().is_production:
        raise ConfigurationError(
            f"{DUPLICATE_ENV} is a test hook that sends every message twice: unset it when "
            "SHOESHOP_ENV=production"
        )
    return raw == "1"


class ChainTask(Task):  # type: ignore[misc]
    """A task whose every send (the checkout's first, each step's next, a retry) goes out once,
    or twice under the duplicate-delivery hook: the chain's task ids are fixed when it starts,
    so both copies carry the same id, and each copy that runs sends the rest of the chain on."""

    def apply_async(self, *args: Any, **options: Any) -> Any:
        result = super().apply_async(*args, **options)
        if duplicate_sends():
            if len(args) < 3:  # (args, kwargs, task_id, …): the id is positional from three
                options["task_id"] = result.id
            super().apply_async(*args, **options)
        return result


app = baseline_app(
    "shoeshop-bench-naive", "shoeshop-naive", [PREFIX + q for q in QUEUES], PREFIX + "shop"
)
# Refused at start-up, in the web and in every worker, before any order is taken.
duplicate_sends()
quiet_task_lines()

# Celery's own retry policy with the system's budget: exponential backoff from a second, with
# jitter, capped at the system's longest delay, as many retries as the system allows (its
# defaults, or SHOESHOP_RETRY_MAX_DELAY and SHOESHOP_MAX_RETRIES when set, as the faults bench
# sets the failure matrix's; Celery counts the cap in whole seconds). The gateway unreachable
# and SQLite busy are TransientErrors; a database blip is an OperationalError. Anything else
# fails the task, and the chain stops there.
RETRY = {
    "autoretry_for": (TransientError, OperationalError),
    "retry_backoff": True,
    "retry_backoff_max": max(1, int(get_settings().retry_max_delay_s)),
    "retry_jitter": True,
    "max_retries": get_settings().max_retries,
}


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    """The system's own gateway client, made when the first charge needs it."""
    from workers.payments.http_gateway import HttpGateway

    return HttpGateway(get_settings().gateway_url)


@app.task(name="naive.create_order", base=ChainTask, **RETRY)  # type: ignore[untyped-decorator]
def create_order(order_id: str) -> None:
    """Take the order up: PAYMENT_PENDING, and its payment made (the orders step)."""
    naive_store.create_order(order_id)


@app.task(name="naive.charge", base=ChainTask, **RETRY)  # type: ignore[untyped-decorator]
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


@app.task(name="naive.ship", base=ChainTask, **RETRY)  # type: ignore[untyped-decorator]
def ship(order_id: str) -> None:
    """Dispatch the parcel (the shipping step)."""
    naive_store.ship(order_id)


@app.task(name="naive.mark_shipped", base=ChainTask, **RETRY)  # type: ignore[untyped-decorator]
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
