"""The simulator's test cards: which number succeeds, is declined or fails for a while (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeAlias

ALWAYS_SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
FLAKY = "4000000000000119"
ALWAYS_UNAVAILABLE = "4000000000000259"
# Charged as any good card, but the issuer refuses to take the money back: every refund of its
# charges is refused (402 expired_or_canceled_card), as when a card was cancelled in between.
REFUND_REFUSED = "4000000000005126"
REFUND_REFUSAL_CODE = "expired_or_canceled_card"

# The flaky card fails this many attempts per idempotency key: enough to exercise a retry
# with backoff more than once, few enough that the default retry budget still succeeds.
FLAKY_FAILURES = 2

DECLINE_MESSAGES = {
    "card_declined": "The card was declined.",
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    REFUND_REFUSAL_CODE: "The card was cancelled or has expired: the issuer refuses the refund.",
}


def refund_refusal(number: str) -> str | None:
    """The code every refund of a charge on this card is refused with, or None."""
    return REFUND_REFUSAL_CODE if number == REFUND_REFUSED else None


@dataclass(frozen=True)
class Approved:
    """The card can be charged."""


@dataclass(frozen=True)
class Refused:
    """The issuer said no; the same request will be refused again."""

    code: str


@dataclass(frozen=True)
class TryAgain:
    """The issuer could not be reached this time; a later attempt may go through."""


Verdict: TypeAlias = Approved | Refused | TryAgain


def judge(number: str, exp_month: int, exp_year: int, *, attempt: int, today: date) -> Verdict:
    """What the issuer answers to the `attempt`-th try (counting from 1) of one idempotency key."""
    if is_expired(exp_month, exp_year, today):
        return Refused("expired_card")
    if number == DECLINED:
        return Refused("card_declined")
    if number == INSUFFICIENT_FUNDS:
        return Refused("insufficient_funds")
    if number == FLAKY:
        return TryAgain() if attempt <= FLAKY_FAILURES else Approved()
    if number == ALWAYS_UNAVAILABLE:
        return TryAgain()
    # A real issuer never sees a mistyped number; the closest honest answer is a plain decline.
    return Approved() if passes_luhn(number) else Refused("card_declined")


def is_expired(exp_month: int, exp_year: int, today: date) -> bool:
    """A card stays valid until the last day of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)


def passes_luhn(number: str) -> bool:
    """The mod-10 checksum every card number carries in its last digit."""
    if not (number.isascii() and number.isdigit()):
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand(number: str) -> str:
    """The card scheme, read from the number's leading digits."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if _is_mastercard(number):
        return "mastercard"
    return "card"


def last4(number: str) -> str:
    """The only part of a number the ledger keeps."""
    return number[-4:]


def _is_mastercard(number: str) -> bool:
    prefix2, prefix4 = number[:2], number[:4]
    if prefix2.isdigit() and 51 <= int(prefix2) <= 55:
        return True
    return len(prefix4) == 4 and prefix4.isdigit() and 2221 <= int(prefix4) <= 2720
