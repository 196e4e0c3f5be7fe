"""Checkout validation: every invalid field is named, valid input becomes a request."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from shop.validation import (
    MAX_JSON_DEPTH,
    WHITESPACE,
    UnreadableBody,
    ValidationFailed,
    luhn_ok,
    numerals_between,
    parse_checkout,
    read_json,
)
from tests.support.shop import order_body

TODAY = date(2026, 11, 26)


def errors_for(body: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_checkout(body, TODAY)
    return caught.value.fields


def errors_in(body: Any) -> dict[str, str]:
    """The errors parse_checkout() finds in ``body``, none if it accepts it."""
    try:
        parse_checkout(body, TODAY)
    except ValidationFailed as exc:
        return exc.fields
    return {}


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


@pytest.mark.parametrize(
    "quantity", [0, 11, -1, "two", 2.5, True, 1.0, 1e300, float("nan"), float("inf"), "٣", 10**30]
)
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


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The valid order_body() with the field at ``path`` ("payment.cvc", "items[0].size") set."""
    return with_change_in(order_body(), path, value)


def with_change_in(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``body`` with the field at ``path`` set to ``value`` (in place)."""
    *parents, name = path.replace("[0]", ".0").split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[name] = value
    return body


# Digits: ASCII 0-9 only. "²" passes str.isdigit() and makes int() raise; Arabic-Indic and
# fullwidth digits pass it and int() reads them; none is something the gateway takes.
@pytest.mark.parametrize("digits", ["²", "١٢", "\uff11\uff12", "1²", "\ud800", "1\udc00"])
@pytest.mark.parametrize(
    "path", ["payment.exp_month", "payment.exp_year", "payment.cvc", "items[0].quantity"]
)
def test_a_digit_field_refuses_digits_that_are_not_ascii(path: str, digits: str) -> None:
    assert set(errors_for(with_change(path, digits))) == {path}


@pytest.mark.parametrize(
    "number", ["4242424242424²42", "\uff14\uff12" * 8, "\uff14242424242424242"]
)
def test_a_card_number_is_ascii_digits_only(number: str) -> None:
    assert errors_for(order_body(card=number)) == {"payment.card_number": "must be 12 to 19 digits"}


def test_digits_come_as_text_or_as_json_integers() -> None:
    body = with_change("payment.exp_month", " 09 ")
    body["payment"].update(exp_year="2031", cvc="123")
    body["items"][0]["quantity"] = "2"

    request = parse_checkout(body, TODAY)

    assert (request.card.exp_month, request.card.exp_year, request.card.cvc) == (9, 2031, "123")
    assert request.lines[0].quantity == 2


@pytest.mark.parametrize(
    ("path", "text", "number"),
    [
        ("items[0].quantity", "0010", 10),
        ("payment.exp_month", "\u3000012\xa0", 12),
        ("payment.exp_year", "0031", 2031),
        ("payment.exp_year", "0" * 5000 + "2031", 2031),
    ],
)
def test_digit_text_may_have_zeros_first_and_whitespace_around(
    path: str, text: str, number: int
) -> None:
    request = parse_checkout(with_change(path, text), TODAY)

    assert number in (request.lines[0].quantity, request.card.exp_month, request.card.exp_year)


# A security code and a card number are text: as a JSON integer, a code loses its zeros first
# (0123 would be 123, a valid-looking other code) and a card number its digits past 2**53 in
# many a client; -4242424242424242 is no card at all.
@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("payment.cvc", 123, "must be 3 or 4 digits"),
        ("payment.cvc", 1234, "must be 3 or 4 digits"),
        ("payment.card_number", 4242424242424242, "must be 12 to 19 digits"),
        ("payment.card_number", -4242424242424242, "must be 12 to 19 digits"),
    ],
)
def test_codes_are_text_never_json_integers(path: str, value: Any, message: str) -> None:
    assert errors_for(with_change(path, value)) == {path: message}


# One space or one hyphen between two digits, as a card prints them; anything else between the
# digits was an accident of reading (str.split() takes U+001C-U+001F for whitespace).
@pytest.mark.parametrize(
    "number",
    [
        "4242-4242-4242-4242-",
        "-4242424242424242",
        "4242--4242-4242-4242",
        "4242  4242 4242 4242",
        "4242\x1c4242\x1d4242\x1e4242",
        "4242\x1f4242424242424",
        "4242\t4242\t4242\t4242",
        "4242\xa04242\xa04242\xa04242",
        "4242_4242_4242_4242",
    ],
)
def test_a_card_number_has_one_space_or_hyphen_between_digits_at_most(number: str) -> None:
    assert errors_for(order_body(card=number)) == {"payment.card_number": "must be 12 to 19 digits"}


@pytest.mark.parametrize(
    "number",
    ["4242 4242 4242 4242", "4242-4242-4242-4242", " 4242424242424242\n", "4-2-4-2 4242424242 4 2"],
)
def test_a_card_number_may_come_as_printed(number: str) -> None:
    assert parse_checkout(order_body(card=number), TODAY).card.number == "4242424242424242"


def test_whitespace_is_unicodes_not_the_information_separators() -> None:
    # str.strip() also drops U+001C-U+001F, control characters: those are refused, not trimmed.
    every = {chr(point) for point in range(0x110000)}
    assert set(WHITESPACE) == {c for c in every if c.isspace()} - set("\x1c\x1d\x1e\x1f")
    assert errors_for(with_change("customer.name", "\x1cAda")) == {
        "customer.name": "must not contain control characters or unpaired surrogates"
    }
    assert set(errors_for(with_change("items[0].quantity", "\x1f2"))) == {"items[0].quantity"}


@pytest.mark.parametrize(
    ("low", "high"), [(0, 9999), (1, 10), (1, 12), (0, 0), (7, 7), (38, 45), (5, 1234), (19, 20000)]
)
def test_numerals_between_match_exactly_the_numbers_in_range(low: int, high: int) -> None:
    pattern = re.compile(numerals_between(low, high))

    matched = {n for n in range(0, 30000) if pattern.fullmatch(str(n))}

    assert matched == set(range(low, high + 1))
    assert not pattern.fullmatch("01") and not pattern.fullmatch("")


TEXT_PATHS = [
    "customer.name",
    "customer.email",
    "shipping_address.line1",
    "shipping_address.city",
    "shipping_address.postal_code",
    "shipping_address.country",
    "items[0].sku",
    "items[0].size",
]


# Text: no C0 or C1 control character (NUL among them) and no lone surrogate, anywhere in the
# text that is kept.
@pytest.mark.parametrize(
    "bad", ["\x00", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f", "\ud83d", "\udc00"]
)
@pytest.mark.parametrize("path", TEXT_PATHS)
def test_every_text_field_refuses_control_characters_and_lone_surrogates(
    path: str, bad: str
) -> None:
    assert errors_for(with_change(path, f"A{bad}B")) == {
        path: "must not contain control characters or unpaired surrogates"
    }


def test_a_surrogate_pair_is_one_character_and_welcome() -> None:
    request = parse_checkout(with_change("customer.name", "Ada 😀 Lovelace"), TODAY)

    assert request.name == "Ada 😀 Lovelace"


def test_whitespace_around_text_is_trimmed_not_refused() -> None:
    request = parse_checkout(with_change("customer.name", "\t Ada Lovelace \n"), TODAY)

    assert request.name == "Ada Lovelace"


@pytest.mark.parametrize("value", [42, "42"])
def test_a_size_may_be_a_number_or_text(value: Any) -> None:
    assert parse_checkout(with_change("items[0].size", value), TODAY).lines[0].size == "42"


@pytest.mark.parametrize("value", [True, 42.0, -42, 10**8, ["42"]])
def test_a_size_is_neither_a_boolean_a_float_nor_out_of_reach(value: Any) -> None:
    assert set(errors_for(with_change("items[0].size", value))) == {"items[0].size"}


# Lengths are in characters (code points), as PostgreSQL counts a VARCHAR: products.sku is 32,
# stock.size is 8.
@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("customer.name", 100),
        ("customer.email", 200),
        ("shipping_address.line1", 200),
        ("shipping_address.city", 200),
        ("shipping_address.postal_code", 200),
        ("items[0].sku", 32),
        ("items[0].size", 8),
    ],
)
def test_text_limits_are_counted_in_characters(path: str, limit: int) -> None:
    at_limit, over = "😀" * limit, "😀" * (limit + 1)
    if path == "customer.email":
        at_limit, over = "😀" * (limit - 8) + "@x.co.nl", "😀" * (limit - 7) + "@x.co.nl"
    if path == "items[0].sku":  # a sku is ASCII letters, digits and hyphens (SKU_PATTERN)
        at_limit = "R" * limit

    assert path not in errors_in(with_change(path, at_limit))
    assert errors_for(with_change(path, over))[path] == f"must be at most {limit} characters"


# Integers: JSON integers (or digit text), never booleans or floats, and bounded.
@pytest.mark.parametrize(
    "value", [True, False, 12.0, 1e300, float("nan"), float("inf"), -1, 0, 13, 10**30, None, "+12"]
)
def test_an_expiry_month_is_a_whole_number_from_1_to_12(value: Any) -> None:
    assert set(errors_for(with_change("payment.exp_month", value))) == {"payment.exp_month"}


@pytest.mark.parametrize(
    "value", [True, 2031.0, 1e300, float("nan"), float("-inf"), 2047, 10**30, "99999", None, 47]
)
def test_an_expiry_year_is_a_whole_number_at_most_twenty_years_ahead(value: Any) -> None:
    assert errors_for(with_change("payment.exp_year", value)) == {
        "payment.exp_year": "must be a year from 2026 to 2046"
    }


@pytest.mark.parametrize("year", [2046, 46, "2046"])
def test_a_card_expiring_twenty_years_ahead_is_accepted(year: Any) -> None:
    assert parse_checkout(with_change("payment.exp_year", year), TODAY).card.exp_year == 2046


def test_a_year_long_past_is_an_expired_card() -> None:
    assert errors_for(with_change("payment.exp_year", 1999)) == {
        "payment.exp_year": "the card has expired"
    }


# The body: what the JSON parser cannot or should not read is UnreadableBody, never another
# exception.
VALID = json.dumps(order_body()).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 1000 + b"]" * 1000,
        b"[" * 100_000,
        b'{"a":' * 1000 + b"1" + b"}" * 1000,
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        VALID.replace(b'"exp_month": 12', b'"exp_month": NaN'),
        VALID.replace(b'"exp_month": 12', b'"exp_month": Infinity'),
        VALID.replace(b'"exp_month": 12', b'"exp_month": -Infinity'),
        VALID.replace(b"Ada", b"\xffda"),
        VALID.replace(b"Ada", b"\xed\xa0\xbdda"),
        b"\xef\xbb\xbf" + VALID,
        VALID.decode().encode("utf-16"),
        b'{"a": 1, "a": 2}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"",
        b"{",
    ],
)
def test_a_body_the_parser_should_not_read_is_unreadable(raw: bytes) -> None:
    with pytest.raises(UnreadableBody):
        read_json(raw)


def test_a_body_as_deep_as_allowed_is_read() -> None:
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH

    assert read_json(deep) is not None
    assert read_json(VALID) == order_body()


def test_a_lone_surrogate_escaped_in_json_is_read_then_refused_as_a_field() -> None:
    body = read_json(VALID.replace(b"Ada Lovelace", b"Testy \\ud83d"))

    assert errors_for(body) == {
        "customer.name": "must not contain control characters or unpaired surrogates"
    }


def test_a_sku_is_letters_digits_and_hyphens() -> None:
    # The events behind the shop carry no other sku (contracts.SKU_PATTERN).
    assert errors_for(with_change("items[0].sku", "RUN 001")) == {
        "items[0].sku": "must be letters, digits and hyphens only"
    }


@pytest.mark.parametrize(("country", "kept"), [("nl", "NL"), (" Nl ", "NL"), ("NL", "NL")])
def test_a_country_code_may_come_in_lower_case(country: str, kept: str) -> None:
    request = parse_checkout(with_change("shipping_address.country", country), TODAY)

    assert request.address["country"] == kept


@pytest.mark.parametrize("country", ["ß", "N1", "NLD", "\u0130L"])
def test_a_country_code_is_two_ascii_letters(country: str) -> None:
    # "ß".upper() is "SS": only ASCII is upper-cased, so it stays refused.
    assert errors_for(with_change("shipping_address.country", country)) == {
        "shipping_address.country": "must be a two-letter country code, like NL"
    }


def test_a_card_may_come_as_printed_but_its_number_not_as_a_json_integer() -> None:
    body = order_body(card="4242 4242-4242 4242")
    body["payment"].update(cvc=" 123 ", exp_year=" 31 ")
    card = parse_checkout(body, TODAY).card
    as_integer = errors_for(with_change("payment.card_number", 4242424242424242))

    assert (card.number, card.cvc, card.exp_year) == ("4242424242424242", "123", 2031)
    assert as_integer == {"payment.card_number": "must be 12 to 19 digits"}


@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_text_is_required(value: Any) -> None:
    paths = [*TEXT_PATHS, "payment.card_number", "payment.cvc"]
    body = order_body()
    for path in paths:
        body = with_change_in(body, path, value)

    assert errors_for(body) == dict.fromkeys(paths, "is required")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("customer", None, "is required"),
        ("customer", "Ada", "must be an object"),
        ("items", None, "must be a non-empty list"),
        ("items", {"sku": "RUN-001"}, "must be a non-empty list"),
        ("items", [order_body()["items"][0]] * 21, "must have at most 20 lines"),
        ("customer.name", 42, "must be text"),
        ("payment.card_number", True, "must be 12 to 19 digits"),
        ("payment.card_number", "4" * 20, "must be 12 to 19 digits"),
        ("payment.cvc", 12, "must be 3 or 4 digits"),
        ("items[0].quantity", 11, "must be between 1 and 10"),
        ("items[0].quantity", "two", "must be a whole number"),
        ("items[0].quantity", None, "must be a whole number"),
        ("payment.exp_month", None, "must be a month from 1 to 12"),
        ("payment.exp_year", -1, "must be a year from 2026 to 2046"),
    ],
)
def test_each_field_says_what_is_wrong_in_its_own_words(
    path: str, value: Any, message: str
) -> None:
    assert errors_for(with_change(path, value))[path] == message


def test_an_item_that_is_not_an_object_is_named_alone() -> None:
    body = order_body()
    body["items"].append("RUN-001")

    assert errors_for(body) == {"items[1]": "must be an object"}


def test_a_field_the_model_does_not_name_is_ignored() -> None:
    body = order_body()
    body["coupon"] = "SPRING"
    body["customer"]["phone"] = "+31 20 000 0000"

    assert parse_checkout(body, TODAY).name == "Ada Lovelace"
