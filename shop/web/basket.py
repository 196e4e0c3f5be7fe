"""The basket: the pairs a shopper has chosen, kept in Flask's signed session cookie until they
check out all of them at once (issue #17).

A line is (sku, size, quantity); the same size of the same shoe added again adds to its line.
The basket holds at most ``MAX_LINES`` lines of at most ``MAX_QUANTITY`` pairs each, the limits
of one order (its contract), so what the basket holds can always be checked out. Nothing is
reserved until the checkout, which reserves every line or none (shop.checkout); a line whose
shoe is no longer sold is dropped, and said so, when the basket is shown.

Pages: ``POST /products/<sku>`` adds a pair (the product page's form, shop.web.pages),
``GET /basket`` shows it with the checkout form, ``POST /basket/line`` changes a line's
quantity or removes it (the line named by shoe and size), ``POST /basket/checkout`` places the
order. A checkout posted twice (a
double press, a resubmit) finds the order the first placed: the session remembers the last
order's idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from config.settings import get_settings
from shop import catalog
from shop.checkout import OutOfStock, checkout
from shop.sealing import PaymentProviderUnavailable, Sealer
from shop.validation import ValidationFailed
from shop.web.forms import CheckoutForm, LineForm, all_field_errors, checkout_body, line_errors
from workers.messaging.contracts import MAX_LINES, MAX_QUANTITY
from workers.messaging.database import engine_for

KEY = "basket"
LAST_ORDER = "basket_last_order"
PROVIDER_DOWN = "Card payments are unavailable right now, please try again in a minute"
EMPTY = "Your basket is empty: choose a pair first."
FULL = f"Your basket holds {MAX_LINES} different pairs already, the most one order takes."


class BasketFull(Exception):
    """The basket cannot take this pair; the message says why, to the shopper."""


@dataclass(frozen=True)
class Line:
    """A basket line as the basket page shows it."""

    index: int
    sku: str
    size: str
    quantity: int
    name: str
    unit_price_cents: int
    currency: str

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


def lines() -> list[dict[str, Any]]:
    """The basket's lines as ``{"sku", "size", "quantity"}``, in the order they were added.
    A cookie that does not hold a well-formed basket is read as an empty one."""
    raw = session.get(KEY)
    if not isinstance(raw, list):
        return []
    found = []
    for entry in raw[:MAX_LINES]:
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and all(isinstance(part, str) for part in entry[:2])
            and isinstance(entry[2], int)
            and 1 <= entry[2] <= MAX_QUANTITY
        ):
            found.append({"sku": entry[0], "size": entry[1], "quantity": entry[2]})
    return found


def _store(found: list[dict[str, Any]]) -> None:
    session[KEY] = [[line["sku"], line["size"], line["quantity"]] for line in found]


def count() -> int:
    """Pairs in the basket (the header shows it)."""
    return sum(line["quantity"] for line in lines())


def add(sku: str, size: str, quantity: int) -> None:
    """Add pairs to the basket. Raises BasketFull when the line would pass MAX_QUANTITY or the
    basket MAX_LINES."""
    found = lines()
    for line in found:
        if (line["sku"], line["size"]) == (sku, size):
            if line["quantity"] + quantity > MAX_QUANTITY:
                raise BasketFull(
                    f"Your basket has {line['quantity']} of this size already; one order takes "
                    f"at most {MAX_QUANTITY} pairs of a size"
                )
            line["quantity"] += quantity
            break
    else:
        if len(found) >= MAX_LINES:
            raise BasketFull(FULL)
        found.append({"sku": sku, "size": size, "quantity": quantity})
    _store(found)


def add_routes(pages: Blueprint) -> None:
    pages.add_url_rule("/basket", "basket", show, methods=["GET"])
    pages.add_url_rule("/basket/line", "basket_line", change_line, methods=["POST"])
    pages.add_url_rule("/basket/checkout", "basket_checkout", check_out, methods=["POST"])
    pages.app_context_processor(lambda: {"basket_count": count()})


def show() -> ResponseReturnValue:
    return _page(CheckoutForm(), 200)


def change_line() -> ResponseReturnValue:
    """Set the quantity of the line the form names by shoe and size (``sku``, ``size``,
    ``quantity``), or remove it (``action=remove``); back to the basket. Named, not numbered: a
    page older than the basket (another tab removed a line) changes the pair it shows or
    nothing, never the pair that moved into its place."""
    found = lines()
    form = LineForm()  # its CSRF token was checked before the view (CSRFProtect)
    named = (request.form.get("sku", ""), request.form.get("size", ""))
    index = next((i for i, line in enumerate(found) if (line["sku"], line["size"]) == named), None)
    removing = request.form.get("action") == "remove"
    if index is None:
        return redirect(url_for("pages.basket"), code=303)
    if not form.validate_on_submit() and not removing:
        return _page(CheckoutForm(), 422, at_lines={index: list(form.quantity.errors)})
    if removing:
        del found[index]
    else:
        found[index]["quantity"] = int(form.quantity.data)
    _store(found)
    return redirect(url_for("pages.basket"), code=303)


def check_out() -> ResponseReturnValue:
    """Place one order for every line; on success the basket is emptied and the shopper sees
    the order's page."""
    form = CheckoutForm()
    _resolved(lines())  # lines whose shoe is gone are dropped first, as the page showed them
    found = lines()
    last = session.get(LAST_ORDER)
    if not found and isinstance(last, dict) and last.get("key") == form.order_key():
        return redirect(url_for("pages.order", order_id=last["order_id"]), code=303)
    if not form.validate_on_submit():
        return _page(form, 422)
    if not found:
        return _page(form, 422, general=[EMPTY])
    sealer: Sealer = current_app.extensions["shoeshop.sealer"]
    try:
        placed = checkout(checkout_body(found, form.data), sealer, form.order_key())
    except ValidationFailed as exc:
        return _page(
            form, 422, general=form.show_errors(exc.fields), at_lines=line_errors(exc.fields)
        )
    except OutOfStock as exc:  # someone bought the last pairs meanwhile: nothing was reserved
        return _page(
            form, 409, general=form.show_errors(exc.fields), at_lines=line_errors(exc.fields)
        )
    except PaymentProviderUnavailable:
        return _page(form, 503, banner=PROVIDER_DOWN)
    session.pop(KEY, None)
    session[LAST_ORDER] = {"key": form.order_key(), "order_id": placed.order_id}
    return redirect(url_for("pages.order", order_id=placed.order_id), code=303)


def _page(
    form: CheckoutForm,
    status: int,
    *,
    general: list[str] | None = None,
    at_lines: dict[int, list[str]] | None = None,
    banner: str | None = None,
) -> ResponseReturnValue:
    shown, gone = _resolved(lines())
    if gone:
        flash(f"{gone} pair(s) in your basket are no longer sold and were taken out.")
    total = sum(line.total_cents for line in shown)
    page = render_template(
        "basket.html",
        lines=shown,
        line_forms=[LineForm(formdata=None, quantity=line.quantity) for line in shown],
        at_lines=at_lines or {},
        total_cents=total,
        currency=shown[0].currency if shown else "EUR",
        form=form,
        field_errors=all_field_errors(form),
        general_errors=general or [],
        banner=banner,
        show_test_cards=not get_settings().is_production,
    )
    return page, status


def _resolved(found: list[dict[str, Any]]) -> tuple[list[Line], int]:
    """The lines with their shoe's name and price; those whose shoe is gone are dropped from the
    basket (how many, the second value)."""
    shown: list[Line] = []
    kept = []
    with engine_for("shop").connect() as conn:
        for line in found:
            product = catalog.get_product(conn, line["sku"])
            if product is None or line["size"] not in {s["size"] for s in product["sizes"]}:
                continue
            kept.append(line)
            shown.append(
                Line(
                    index=len(shown),
                    sku=line["sku"],
                    size=line["size"],
                    quantity=line["quantity"],
                    name=product["name"],
                    unit_price_cents=product["price_cents"],
                    currency=product["currency"],
                )
            )
    gone = sum(line["quantity"] for line in found) - sum(line["quantity"] for line in kept)
    if gone:
        _store(kept)
    return shown, gone
