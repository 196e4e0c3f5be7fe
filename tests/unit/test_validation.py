"""Checkout validation: every invalid field is named, valid input becomes a request."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shop.validation import ValidationFailed, luhn_ok, parse_checkout
from tests.support.shop import order_body

TODAY = date(2026, 11, 26)


def errors_for(body: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_checkout(body, TODAY)
    return caught.value.fields


def test_a_complete_order_is_accepted() -> None:
    request = parse_checkout(order_body(quantity=2), TODAY)
    assert request.lines[0].quantity == 2
    assert request.card.last4 == "4242"
    assert request.card.brand == "visa"


def test_the_card_number_never_appears_in_the_requests_repr() -> None:
    request = parse_checkout(order_body(), TODAY)
    assert "4242424242424242" not in repr(request)


def test_an_invalid_email_is_named() -> None:
    body = order_body()
    body["customer"]["email"] = "ada-at-example"
    assert set(errors_for(body)) == {"customer.email"}


def test_a_card_number_failing_luhn_is_named() -> None:
    body = order_body(card="4242424242424241")
    assert errors_for(body) == {"payment.card_number": "is not a valid card number"}


def test_an_expired_card_is_named() -> None:
    body = order_body()
    body["payment"].update(exp_month=10, exp_year=2026)
    assert "payment.exp_year" in errors_for(body)


def test_the_current_month_has_not_expired() -> None:
    body = order_body()
    body["payment"].update(exp_month=11, exp_year=2026)
    parse_checkout(body, TODAY)


@pytest.mark.parametrize("quantity", [0, 11, -1, "two", 2.5, True])
def test_a_quantity_outside_one_to_ten_is_named(quantity: Any) -> None:
    body = order_body()
    body["items"][0]["quantity"] = quantity
    assert set(errors_for(body)) == {"items[0].quantity"}


def test_every_missing_address_part_is_named() -> None:
    body = order_body()
    body["shipping_address"] = {"line1": " "}
    assert set(errors_for(body)) == {
        "shipping_address.line1",
        "shipping_address.city",
        "shipping_address.postal_code",
        "shipping_address.country",
    }


def test_all_errors_are_reported_together() -> None:
    body = order_body(card="123")
    body["customer"]["email"] = "nope"
    body["items"] = []
    assert set(errors_for(body)) == {"customer.email", "items", "payment.card_number"}


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert errors_for(["not", "an", "object"]) == {"body": "must be a JSON object"}


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4242424242424242", True), ("4000000000000002", True), ("4242424242424241", False)],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_ok(number) is valid
