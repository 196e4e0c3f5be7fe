"""The shop's HTML pages: the catalogue, a product with its form into the basket (the basket's
pages are shop.web.basket), and order tracking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from shop import catalog, readmodel
from shop.cancel import TooLateToCancel, UnknownOrder, request_cancellation
from shop.web import basket
from shop.web.forms import AddToBasketForm, all_field_errors, size_choices
from workers.messaging.database import engine_for

bp = Blueprint("pages", __name__)
basket.add_routes(bp)

STATUS_LABELS = {
    "PLACED": "Placed",
    "PAYMENT_PENDING": "Awaiting payment",
    "PAID": "Paid",
    "SHIPPED": "Shipped",
    "CANCELLED": "Cancelled",
}
# What a customer reads when a step of the order waits on a parked message
# (the view's "delayed", from message.parked: see shop.readmodel).
DELAYS = {
    "payment": "Your payment is delayed; we are on it and will not charge you twice.",
    "shipping": "Shipping is delayed; your order is safe and will ship once we are back on track.",
    "order": "Processing is delayed; your order is safe and will continue shortly.",
    "other": "Something is taking longer than usual; your order is safe.",
}
# The happy path an order walks; CANCELLED can branch off any step before SHIPPED.
STEPS = ("PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED")
FINAL_STATUSES = ("SHIPPED", "CANCELLED")
CURRENCY_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
# Few enough pairs that a shopper should know before choosing.
LOW_STOCK = 5


@bp.app_template_filter("money")
def money(cents: int, currency: str = "EUR") -> str:
    """Integer cents as a price: 12900 EUR reads "€129.00"."""
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{currency} {amount}"


@bp.app_template_filter("when")
def when(iso: str) -> str:
    """An event time as "03 May 2025, 14:02:11 UTC"; tracking.js writes the same shape."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is not None:  # stored times are UTC; some databases drop the offset
        moment = moment.astimezone(UTC)
    return moment.strftime("%d %b %Y, %H:%M:%S UTC")


@bp.app_template_filter("event_phrase")
def event_phrase(event_type: str) -> str:
    """ "shoeshop.payment.succeeded.v1" reads "Payment succeeded"."""
    parts = event_type.split(".")
    words = [part for part in parts[1:] if not (part.startswith("v") and part[1:].isdigit())]
    return " ".join(words).replace("_", " ").capitalize() or event_type


def progress(status: str) -> list[dict[str, str]]:
    """Each step of the strip with its state: done, current or todo."""
    reached = STEPS.index(status) if status in STEPS else 0
    steps = []
    for index, code in enumerate(STEPS):
        if status == "CANCELLED":
            state = "done" if index == 0 else "todo"
        else:
            state = "done" if index < reached else "current" if index == reached else "todo"
        steps.append({"code": code, "label": STATUS_LABELS[code], "state": state})
    return steps


@bp.get("/")
def catalogue() -> ResponseReturnValue:
    with engine_for("shop").connect() as conn:
        products = catalog.list_products(conn)
    return render_template("catalogue.html", products=products)


@bp.route("/products/<sku:sku>", methods=["GET", "POST"])
def product(sku: str) -> ResponseReturnValue:
    """The shoe, and its form that adds a size and a number of pairs to the basket."""
    shoe = _load_product(sku)
    if shoe is None:
        return _not_found("We do not sell a shoe with that code.")
    form = AddToBasketForm()
    form.size.choices = size_choices(shoe["sizes"])
    if not form.validate_on_submit():
        return _product_page(shoe, form, 422 if form.is_submitted() else 200)
    size, quantity = str(form.size.data), int(form.quantity.data)
    left = next((int(s["available"]) for s in shoe["sizes"] if s["size"] == size), 0)
    if quantity > left:
        form.quantity.errors = [
            f"Only {left} pair(s) left in size {size}" if left else f"Size {size} is sold out"
        ]
        return _product_page(shoe, form, 409)
    try:
        basket.add(sku, size, quantity)
    except basket.BasketFull as exc:
        form.quantity.errors = [str(exc)]
        return _product_page(shoe, form, 422)
    return redirect(url_for("pages.basket"), code=303)


@bp.get("/orders/<order_id:order_id>")
def order(order_id: str) -> ResponseReturnValue:
    with engine_for("shop").connect() as conn:
        view = readmodel.order_view(conn, order_id)
    if view is None:
        return _not_found("No order has that number. Check the link in your confirmation.")
    delayed = view["delayed"]
    return render_template(
        "order.html",
        order=view,
        delayed=delayed,
        delay_text=DELAYS.get(delayed["stage"], DELAYS["other"]) if delayed else "",
        status_label=STATUS_LABELS.get(view["status"], view["status"]),
        reason_text=view["reason_text"] or "",
        steps=progress(view["status"]),
        final=view["status"] in FINAL_STATUSES,
        # tracking.js re-renders with the same words the server used.
        client_text={
            "labels": STATUS_LABELS,
            "reasons": readmodel.REASONS,
            "steps": STEPS,
            "final": FINAL_STATUSES,
            "delays": DELAYS,
        },
    )


@bp.post("/orders/<order_id:order_id>/cancel")
def cancel_order(order_id: str) -> ResponseReturnValue:
    try:
        request_cancellation(order_id)
    except UnknownOrder:
        return _not_found("No order has that number. Check the link in your confirmation.")
    except TooLateToCancel:
        pass  # the tracking page shows why: it has shipped, or is already cancelled
    return redirect(url_for("pages.order", order_id=order_id), code=303)


def _load_product(sku: str) -> dict[str, Any] | None:
    with engine_for("shop").connect() as conn:
        return catalog.get_product(conn, sku)


def _product_page(shoe: dict[str, Any], form: AddToBasketForm, status: int) -> ResponseReturnValue:
    page = render_template(
        "product.html",
        product=shoe,
        form=form,
        field_errors=all_field_errors(form),
        low_stock=LOW_STOCK,
    )
    return page, status


def _not_found(message: str) -> ResponseReturnValue:
    return render_template("404.html", message=message), 404
