"""The shop's forms: a pair into the basket (the product page), a line's quantity, and the
checkout of the whole basket (the basket page); and how checkout's field errors land back on
them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, StopValidation

from shop.validation import KEY_PATH, is_ascii_digits
from workers.messaging.contracts import MAX_QUANTITY

# checkout() names problems by their place in the JSON body; the form has flat fields. A path
# missing here (say "body" or "payment") has no field of its own and goes to the error summary.
FIELD_FOR_PATH: dict[str, str] = {
    "customer.name": "name",
    "customer.email": "email",
    "shipping_address.line1": "line1",
    "shipping_address.city": "city",
    "shipping_address.postal_code": "postal_code",
    "shipping_address.country": "country",
    "payment.card_number": "card_number",
    "payment.exp_month": "exp_month",
    "payment.exp_year": "exp_year",
    "payment.cvc": "cvc",
}

# The basket's lines: checkout names them items[<index>]… (the line's quantity, size or sku).
LINE_PATH = re.compile(r"items\[([0-9]+)\](?:\.\w+)?")

# What a shopper reads about a problem that has no field of their own to show it at.
SUMMARY_FOR_PATH: dict[str, str] = {
    KEY_PATH: "This form has already placed an order with other details. Press “Place order and"
    " pay” again to place this one as a new order.",
}

# checkout()'s messages are fragments written to follow a field's name ("is required");
# these first words tell such a fragment from a message that is already a sentence.
_FRAGMENT_STARTS = ("is ", "must ", "does ", "has ")
# Hidden fields have no place on the page to show an error next to.
_NOT_SHOWN = frozenset({"csrf_token", "idempotency_key"})


def form_field_for(path: str) -> str | None:
    """The form field that shows the error checkout() reported at ``path``, if any."""
    return FIELD_FOR_PATH.get(path)


def sentence(label: str, message: str) -> str:
    """An error message a shopper can read on its own: "Email is not a valid email address"."""
    if message.startswith(_FRAGMENT_STARTS):
        return f"{label} {message}"
    return message[:1].upper() + message[1:]


def place_errors(
    fields: Mapping[str, str], labels: Mapping[str, str]
) -> tuple[dict[str, list[str]], list[str]]:
    """Split checkout's errors into those shown at a form field and those with no field."""
    at_field: dict[str, list[str]] = {}
    elsewhere: list[str] = []
    for path, message in fields.items():
        name = form_field_for(path)
        if name is None or name not in labels:
            elsewhere.append(SUMMARY_FOR_PATH.get(path) or sentence(path, message))
        else:
            at_field.setdefault(name, []).append(sentence(labels[name], message))
    return at_field, elsewhere


def checkout_body(lines: Sequence[Mapping[str, Any]], data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON API's body for the basket's lines and the form's data, so the form and the API
    share one checkout."""
    return {
        "customer": {"name": data.get("name"), "email": data.get("email")},
        "shipping_address": {
            key: data.get(key) for key in ("line1", "city", "postal_code", "country")
        },
        "items": [
            {"sku": line["sku"], "size": line["size"], "quantity": line["quantity"]}
            for line in lines
        ],
        "payment": {
            "card_number": data.get("card_number"),
            "exp_month": data.get("exp_month"),
            "exp_year": data.get("exp_year"),
            "cvc": data.get("cvc"),
        },
    }


def line_errors(fields: Mapping[str, str]) -> dict[int, list[str]]:
    """Checkout's errors about the basket's lines (``items[<index>]…``), by line."""
    found: dict[int, list[str]] = {}
    for path, message in fields.items():
        match = LINE_PATH.fullmatch(path)
        if match is not None:
            found.setdefault(int(match[1]), []).append(sentence("This line", message))
    return found


def size_choices(sizes: list[dict[str, Any]]) -> list[SelectChoice]:
    """A "choose" prompt, then each size; a sold-out size stays visible but cannot be picked."""
    choices = [SelectChoice("", "Choose your size")]
    for entry in sizes:
        size, left = str(entry["size"]), int(entry["available"])
        if left <= 0:
            choices.append(SelectChoice(size, f"EU {size} (sold out)", {"disabled": True}))
        else:
            choices.append(SelectChoice(size, f"EU {size}"))
    return choices


class WholeNumberField(IntegerField):  # type: ignore[misc]  # wtforms ships no type hints
    """An IntegerField that reads the ASCII digits 0-9 only, as checkout() does. int() alone
    takes "٣" (Arabic-Indic three) for 3, "1_0" for 10 and " +3" for 3."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and not is_ascii_digits(str(valuelist[0]).strip()):
            self.data = None
            raise ValueError(self.invalid_value_message)
        super().process_formdata(valuelist)


def _stop_if_unreadable(form: Any, field: Any) -> None:
    """Skip the other checks when the input was not a number: one error says it all."""
    if field.process_errors:
        raise StopValidation()


def _new_key() -> str:
    return str(uuid.uuid4())


def _quantity_field() -> Any:
    return WholeNumberField(
        "Quantity",
        default=1,
        invalid_value_message=f"Enter a whole number of pairs, 1 to {MAX_QUANTITY}",
        validators=[
            _stop_if_unreadable,
            NumberRange(1, MAX_QUANTITY, message=f"Choose 1 to {MAX_QUANTITY} pairs"),
        ],
        render_kw={"min": 1, "max": MAX_QUANTITY, "inputmode": "numeric"},
    )


class AddToBasketForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type hints
    """One shoe's size and how many pairs of it, into the basket (the product page)."""

    size = SelectField("Size", validators=[DataRequired(message="Choose a size")])
    quantity = _quantity_field()


class LineForm(FlaskForm):  # type: ignore[misc]
    """A basket line's new quantity (the basket page); its other button removes the line."""

    quantity = _quantity_field()


class CheckoutForm(FlaskForm):  # type: ignore[misc]
    """Who the basket goes to and the card that pays for it (the basket page).

    The validators only catch empty fields; checkout() decides what is valid, so the page and
    the JSON API can never disagree.
    """

    name = StringField(
        "Full name",
        validators=[DataRequired(message="Enter your name")],
        render_kw={"autocomplete": "name"},
    )
    email = StringField(
        "Email",
        validators=[DataRequired(message="Enter your email address")],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    line1 = StringField(
        "Street and number",
        validators=[DataRequired(message="Enter your street and house number")],
        render_kw={"autocomplete": "address-line1"},
    )
    city = StringField(
        "City",
        validators=[DataRequired(message="Enter your city")],
        render_kw={"autocomplete": "address-level2"},
    )
    postal_code = StringField(
        "Postal code",
        validators=[DataRequired(message="Enter your postal code")],
        render_kw={"autocomplete": "postal-code"},
    )
    country = StringField(
        "Country code",
        default="NL",
        validators=[DataRequired(message="Enter a two-letter country code, like NL")],
        render_kw={"autocomplete": "country", "maxlength": 2, "size": 2},
    )
    card_number = StringField(
        "Card number",
        validators=[DataRequired(message="Enter your card number")],
        render_kw={"autocomplete": "cc-number", "inputmode": "numeric"},
    )
    exp_month = StringField(
        "Expiry month",
        validators=[DataRequired(message="Enter the expiry month")],
        render_kw={"autocomplete": "cc-exp-month", "inputmode": "numeric", "placeholder": "MM"},
    )
    exp_year = StringField(
        "Expiry year",
        validators=[DataRequired(message="Enter the expiry year")],
        render_kw={"autocomplete": "cc-exp-year", "inputmode": "numeric", "placeholder": "YYYY"},
    )
    cvc = StringField(
        "Security code (CVC)",
        validators=[DataRequired(message="Enter the security code")],
        render_kw={"autocomplete": "cc-csc", "inputmode": "numeric"},
    )
    # Made once when the form is first shown and posted back with it, so pressing "Pay" twice
    # (or resubmitting after a timeout) finds the first order instead of placing a second.
    idempotency_key = HiddenField(default=_new_key, validators=[Length(max=100)])

    def order_key(self) -> str | None:
        """The posted idempotency key, or None when it is not one this form made."""
        raw = self.idempotency_key.data
        try:
            return str(uuid.UUID(raw)) if isinstance(raw, str) else None
        except ValueError:
            return None

    def show_errors(self, fields: Mapping[str, str]) -> list[str]:
        """Attach checkout's errors to their fields; return those that belong to no field nor
        to a basket line (``line_errors`` has those)."""
        labels = {name: str(self[name].label.text) for name in FIELD_FOR_PATH.values()}
        others = {
            path: message for path, message in fields.items() if not LINE_PATH.fullmatch(path)
        }
        at_field, elsewhere = place_errors(others, labels)
        for name, messages in at_field.items():
            # WTForms leaves errors as a tuple when validate() was not run on a field.
            self[name].errors = [*self[name].errors, *messages]
        if KEY_PATH in fields:
            # The shopper was told; a fresh key lets the next press place this order.
            self.idempotency_key.data = _new_key()
        return elsewhere


def all_field_errors(form: FlaskForm) -> list[tuple[str, str]]:
    """Every (field id, message) pair in page order, for the summary at the top of the form."""
    return [
        (field.id, str(message))
        for field in form
        if field.name not in _NOT_SHOWN
        for message in field.errors
    ]
