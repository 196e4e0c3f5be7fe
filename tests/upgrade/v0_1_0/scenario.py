"""The story 0.1.0 is made to play: the orders of each outcome, in order, then what the API says.

Child side: runs inside the 0.1.0 worktree against 0.1.0's processes (harness.Shop). Each step
returns the ids of its orders; run_scenario gathers them by outcome for the manifest.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .common import WAITING, say
from .harness import Shop

GOOD_CARD = "4242424242424242"
DECLINED_CARDS = ("4000000000000002", "4000000000009995")
PACKING_DELAY_S = "30"


def run_scenario(shop: Shop) -> dict[str, Any]:
    say("placing 3 orders that ship and 2 that are declined")
    done = ship_and_decline(shop)
    say("cancelling a paid order before its parcel leaves")
    after = cancel_after_payment(shop)
    say("cancelling an order before its payment")
    before = cancel_before_payment(shop)
    say("parking a payment: the gateway is stopped")
    parked, letter = park_a_payment(shop)
    say("stopping the orders worker and leaving 3 orders on its queue")
    waiting = leave_waiting(shop)
    return {
        "orders": {
            **done,
            "cancelled": [after, before],
            "parked": [parked],
            "waiting": waiting,
        },
        "cancelled_how": {after: "after_payment_refunded", before: "before_payment_late_refund"},
        "parked_letter": letter,
    }


def ship_and_decline(shop: Shop) -> dict[str, list[str]]:
    """Three good cards ship; the two declining test cards are cancelled for payment_declined."""
    shipped = [shop.place(GOOD_CARD, index) for index in range(3)]
    declined = [shop.place(card, 3 + i) for i, card in enumerate(DECLINED_CARDS)]
    shop.wait_status(shipped, "SHIPPED", None, "orders", "payments", "shipping")
    shop.wait_status(declined, "CANCELLED", "payment_declined", "orders", "payments")
    shop.wait_quiet()
    return {"shipped": shipped, "declined": declined}


def cancel_after_payment(shop: Shop) -> str:
    """Paid, then cancelled while its parcel is packed: the parcel is stopped, the money refunded.

    Shipping is restarted with a packing delay; with no beat running, nothing sends a packed
    parcel off, so the cancellation cannot lose a race against the dispatch.
    """
    shop.processes.restart("shipping", {"SHOESHOP_PACKING_DELAY": PACKING_DELAY_S})
    order_id = shop.place(GOOD_CARD, 5)
    shop.wait_status([order_id], "PAID", None, "orders", "payments")
    shop.cancel(order_id)
    shop.wait_status([order_id], "CANCELLED", "customer_request", "orders", "shipping")
    wait_refunded(shop, order_id)
    return order_id


def cancel_before_payment(shop: Shop) -> str:
    """Cancelled while its payment request waits for the (stopped) payments worker.

    0.1.0 cancels at once; the payments worker, back, still charges the card (it does not know
    of the cancellation) and the orders component refunds that late payment automatically.
    """
    shop.processes.stop("payments")
    order_id = shop.place(GOOD_CARD, 6)
    shop.wait_status([order_id], "PAYMENT_PENDING", None, "orders")
    shop.cancel(order_id)
    shop.wait_status([order_id], "CANCELLED", "customer_request", "orders")
    shop.processes.start("payments")
    wait_refunded(shop, order_id)
    return order_id


def wait_refunded(shop: Shop, order_id: str) -> None:
    def refunded() -> bool:
        return [c["status"] for c in shop.charges(order_id)] == ["refunded"]

    ledger = partial(shop.charges, order_id)
    shop.wait(f"order {order_id} to be refunded", refunded, "orders", "payments", seen=ledger)
    shop.wait_quiet()


def park_a_payment(shop: Shop) -> tuple[str, str]:
    """A payment that exhausts its retries against a stopped gateway is parked.

    The order is placed while the gateway still runs (the shop seals the card with the gateway's
    public key, which each gunicorn worker fetches once), with the payments worker stopped; the
    gateway is stopped next, and only then is payments started again.
    """
    shop.processes.stop("payments")
    order_id = shop.place(GOOD_CARD, 7)
    shop.wait_status([order_id], "PAYMENT_PENDING", None, "orders")
    shop.processes.stop("gateway")
    shop.processes.start("payments")

    def parked() -> str | None:
        letters = shop.parked_letters(order_id)
        ok = [
            i
            for i, task, status, _n in letters
            if task == "payments.on_payment_requested" and status == "parked"
        ]
        return ok[0] if ok else None

    letters = partial(shop.parked_letters, order_id)
    letter = shop.wait("its payment to be parked", parked, "payments", seen=letters)
    shop.processes.start("gateway")
    shop.wait_quiet()
    return order_id, letter


def leave_waiting(shop: Shop) -> list[str]:
    """The orders worker stopped (SIGTERM): order.placed is published and waits on its queue."""
    shop.processes.stop("orders")
    waiting = [shop.place(GOOD_CARD, 8 + i) for i in range(WAITING)]
    shop.wait_quiet({"orders": WAITING})
    shop.wait_status(waiting, "PLACED", None, "web", "relay")
    return waiting


def record(shop: Shop, ids: list[str]) -> dict[str, Any]:
    """What the API and the gateway say, with everything still up."""
    from tests.support.invariants import ShopUnderTest

    products = shop.http.get(f"{shop.url}/api/products").raise_for_status().json()
    cli = ShopUnderTest(shop.url, shop.gateway_url, shop.processes.env)
    keep = ("id", "event_id", "subject", "task", "queue", "attempts", "exception", "status")
    return {
        "api": {"products": products, "orders": {oid: shop.order(oid) for oid in ids}},
        "gateway_ledger": {oid: shop.charges(oid) for oid in ids},
        "dead_letters": [{key: letter[key] for key in keep} for letter in cli.dead_letters()],
    }
