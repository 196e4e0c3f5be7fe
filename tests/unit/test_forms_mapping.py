"""How checkout's field paths and messages land on the basket's checkout form and its lines."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import Form

from shop.validation import IdempotencyKeyReused
from shop.web.forms import (
    FIELD_FOR_PATH,
    SUMMARY_FOR_PATH,
    WholeNumberField,
    checkout_body,
    form_field_for,
    line_errors,
    place_errors,
    sentence,
)

LABELS = {"email": "Email", "card_number": "Card number", "size": "Size", "quantity": "Quantity"}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("customer.name", "name"),
        ("customer.email", "email"),
        ("shipping_address.line1", "line1"),
        ("shipping_address.city", "city"),
        ("shipping_address.postal_code", "postal_code"),
        ("shipping_address.country", "country"),
        ("payment.card_number", "card_number"),
        ("payment.exp_month", "exp_month"),
        ("payment.exp_year", "exp_year"),
        ("payment.cvc", "cvc"),
    ],
)
def test_each_checkout_path_lands_on_its_form_field(path: str, field: str) -> None:
    assert form_field_for(path) == field


def test_a_path_without_a_form_field_has_no_field() -> None:
    assert form_field_for("body") is None
    assert form_field_for("payment") is None
    assert form_field_for("items[0].quantity") is None  # a basket line's: line_errors


def test_every_mapped_field_is_a_field_of_the_checkout_form() -> None:
    from shop.web.forms import CheckoutForm

    declared = {name for name in vars(CheckoutForm) if not name.startswith("_")}
    assert set(FIELD_FOR_PATH.values()) <= declared


def test_a_fragment_reads_as_a_sentence_after_the_field_label() -> None:
    assert sentence("Email", "is not a valid email address") == "Email is not a valid email address"


def test_a_message_that_is_already_a_sentence_is_only_capitalised() -> None:
    assert sentence("Expiry year", "the card has expired") == "The card has expired"


def test_errors_are_split_between_fields_and_the_summary() -> None:
    fields = {
        "customer.email": "is not a valid email address",
        "payment.card_number": "is not a valid card number",
        "body": "must be a JSON object",
    }

    at_field, elsewhere = place_errors(fields, LABELS)

    assert at_field == {
        "email": ["Email is not a valid email address"],
        "card_number": ["Card number is not a valid card number"],
    }
    assert elsewhere == ["body must be a JSON object"]


def test_errors_about_basket_lines_land_on_their_lines() -> None:
    fields = {
        "items[0].sku": "no shoe has the sku 'X'",
        "items[0].size": "is required",
        "items[3].quantity": "not enough pairs left in size 42",
        "items": "must have 1 to 20 lines",
        "customer.email": "is not a valid email address",
    }

    assert line_errors(fields) == {
        0: ["No shoe has the sku 'X'", "This line is required"],
        3: ["Not enough pairs left in size 42"],
    }


def test_the_basket_and_the_form_data_become_the_json_api_body() -> None:
    lines = [
        {"sku": "RUN-001", "size": "42", "quantity": 2},
        {"sku": "TRL-001", "size": "43", "quantity": 1},
    ]
    data = {
        "name": "Ada",
        "email": "ada@example.com",
        "line1": "Keizersgracht 1",
        "city": "Amsterdam",
        "postal_code": "1015 CJ",
        "country": "NL",
        "card_number": "4242424242424242",
        "exp_month": "12",
        "exp_year": "2031",
        "cvc": "123",
        "csrf_token": "ignored",
    }

    body = checkout_body(lines, data)

    assert body == {
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "shipping_address": {
            "line1": "Keizersgracht 1",
            "city": "Amsterdam",
            "postal_code": "1015 CJ",
            "country": "NL",
        },
        "items": [
            {"sku": "RUN-001", "size": "42", "quantity": 2},
            {"sku": "TRL-001", "size": "43", "quantity": 1},
        ],
        "payment": {
            "card_number": "4242424242424242",
            "exp_month": "12",
            "exp_year": "2031",
            "cvc": "123",
        },
    }


def test_a_key_reused_for_other_details_is_told_in_the_shoppers_words() -> None:
    at_field, elsewhere = place_errors(IdempotencyKeyReused().fields, LABELS)

    assert at_field == {}
    assert elsewhere == [SUMMARY_FOR_PATH["Idempotency-Key"]]
    assert elsewhere[0].startswith("This form has already placed an order")


class QuantityForm(Form):
    quantity = WholeNumberField(invalid_value_message="Enter a whole number")


@pytest.mark.parametrize("typed", ["٣", "\uff13", "³", "1_0", "+3", "-1", "3.0", "", "three"])
def test_a_whole_number_field_reads_ascii_digits_only(typed: str) -> None:
    form = QuantityForm(MultiDict({"quantity": typed}))

    assert form.quantity.data is None
    assert form.quantity.process_errors == ["Enter a whole number"]


@pytest.mark.parametrize(("typed", "number"), [("3", 3), (" 10 ", 10), ("007", 7)])
def test_a_whole_number_field_reads_ascii_digits(typed: str, number: int) -> None:
    form = QuantityForm(MultiDict({"quantity": typed}))

    assert form.quantity.data == number
    assert form.quantity.process_errors == []
