"""The simulator's test cards and brand detection."""

from __future__ import annotations

from datetime import date

import pytest

from workers.gateway import cards
from workers.gateway.cards import Approved, Refused, TryAgain, brand, judge, passes_luhn

TODAY = date(2026, 6, 15)


def _judge(number: str, *, attempt: int = 1, exp_month: int = 12, exp_year: int = 2030) -> object:
    return judge(number, exp_month, exp_year, attempt=attempt, today=TODAY)


def test_4242_succeeds() -> None:
    assert _judge(cards.ALWAYS_SUCCEEDS) == Approved()


def test_0002_is_declined_as_card_declined() -> None:
    assert _judge(cards.DECLINED) == Refused("card_declined")


def test_9995_is_declined_for_insufficient_funds() -> None:
    assert _judge(cards.INSUFFICIENT_FUNDS) == Refused("insufficient_funds")


def test_0119_fails_transiently_twice_then_succeeds() -> None:
    verdicts = [_judge(cards.FLAKY, attempt=attempt) for attempt in (1, 2, 3, 4)]

    assert verdicts == [TryAgain(), TryAgain(), Approved(), Approved()]


def test_0259_always_fails_transiently() -> None:
    verdicts = {_judge(cards.ALWAYS_UNAVAILABLE, attempt=attempt) for attempt in range(1, 20)}

    assert verdicts == {TryAgain()}


@pytest.mark.parametrize("number", ["5555555555554444", "378282246310005", "6011111111111117"])
def test_any_other_luhn_valid_number_succeeds(number: str) -> None:
    assert _judge(number) == Approved()


def test_number_failing_luhn_is_declined() -> None:
    assert _judge("4242424242424241") == Refused("card_declined")


def test_card_past_its_expiry_month_is_declined_as_expired() -> None:
    assert _judge(cards.ALWAYS_SUCCEEDS, exp_month=5, exp_year=2026) == Refused("expired_card")


def test_card_expiring_this_month_is_still_valid() -> None:
    assert _judge(cards.ALWAYS_SUCCEEDS, exp_month=6, exp_year=2026) == Approved()


def test_expiry_is_checked_before_the_test_card_behaviour() -> None:
    verdict = _judge(cards.ALWAYS_UNAVAILABLE, exp_month=12, exp_year=2025)

    assert verdict == Refused("expired_card")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("4242424242424242", "visa"),
        ("5105105105105100", "mastercard"),
        ("5555555555554444", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720990000000000", "mastercard"),
        ("2721000000000000", "card"),
        ("2220990000000000", "card"),
        ("5000000000000000", "card"),
        ("5600000000000000", "card"),
        ("378282246310005", "amex"),
        ("340000000000009", "amex"),
        ("6011111111111117", "card"),
    ],
)
def test_brand_is_read_from_the_leading_digits(number: str, expected: str) -> None:
    assert brand(number) == expected


@pytest.mark.parametrize("number", ["", "42a2", "4242 4242 4242 4242", "\uff14\uff12\uff14\uff12"])
def test_luhn_rejects_anything_but_ascii_digits(number: str) -> None:
    assert not passes_luhn(number)


def test_every_test_card_number_passes_luhn() -> None:
    numbers = [
        cards.ALWAYS_SUCCEEDS,
        cards.DECLINED,
        cards.INSUFFICIENT_FUNDS,
        cards.FLAKY,
        cards.ALWAYS_UNAVAILABLE,
    ]

    assert all(passes_luhn(number) for number in numbers)
