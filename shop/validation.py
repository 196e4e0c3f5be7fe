"""Checking a checkout request: pure, and every problem named by its field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MAX_QUANTITY = 10
MAX_LINES = 20
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
ADDRESS_FIELDS = ("line1", "city", "postal_code", "country")


class ValidationFailed(Exception):
    """The request is well-formed JSON but some fields are wrong; ``fields`` says which and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Card:
    # repr=False: a card number must never end up in a log line or a traceback.
    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def brand(self) -> str:
        if self.number.startswith("4"):
            return "visa"
        if (
            self.number[:2] in {"51", "52", "53", "54", "55"}
            or 2221 <= int(self.number[:4]) <= 2720
        ):
            return "mastercard"
        if self.number[:2] in {"34", "37"}:
            return "amex"
        return "card"


@dataclass(frozen=True)
class Line:
    sku: str
    size: str
    quantity: int


@dataclass(frozen=True)
class CheckoutRequest:
    name: str
    email: str
    address: dict[str, str]
    lines: tuple[Line, ...]
    card: Card


def luhn_ok(number: str) -> bool:
    digits = [int(ch) for ch in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def parse_checkout(raw: Any, today: date) -> CheckoutRequest:
    """Turn a decoded JSON body into a request, or raise ValidationFailed with every error."""
    errors: dict[str, str] = {}
    if not isinstance(raw, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    customer = _object(raw, "customer", errors)
    name = _text(customer, "customer.name", "name", errors, max_length=100)
    email = _text(customer, "customer.email", "email", errors, max_length=200)
    if email and not _EMAIL.match(email):
        errors["customer.email"] = "is not a valid email address"
    address = _address(_object(raw, "shipping_address", errors), errors)
    lines = _lines(raw.get("items"), errors)
    card = _card(_object(raw, "payment", errors), today, errors)
    if errors:
        raise ValidationFailed(errors)
    assert card is not None
    return CheckoutRequest(name=name, email=email, address=address, lines=lines, card=card)


def _object(raw: dict[str, Any], name: str, errors: dict[str, str]) -> dict[str, Any]:
    value = raw.get(name)
    if isinstance(value, dict):
        return value
    errors[name] = "is required" if value is None else "must be an object"
    return {}


def _text(
    obj: dict[str, Any], path: str, key: str, errors: dict[str, str], *, max_length: int
) -> str:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[path] = "is required"
        return ""
    if not isinstance(value, str):
        errors[path] = "must be text"
        return ""
    if len(value) > max_length:
        errors[path] = f"must be at most {max_length} characters"
        return ""
    return value.strip()


def _address(obj: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    address = {
        key: _text(obj, f"shipping_address.{key}", key, errors, max_length=200)
        for key in ADDRESS_FIELDS
    }
    if address["country"] and not _COUNTRY.match(address["country"]):
        errors["shipping_address.country"] = "must be a two-letter country code, like NL"
    address["country"] = address["country"].upper()
    return address


def _lines(raw: Any, errors: dict[str, str]) -> tuple[Line, ...]:
    if not isinstance(raw, list) or not raw:
        errors["items"] = "must be a non-empty list"
        return ()
    if len(raw) > MAX_LINES:
        errors["items"] = f"must have at most {MAX_LINES} lines"
        return ()
    lines = []
    for index, item in enumerate(raw):
        path = f"items[{index}]"
        if not isinstance(item, dict):
            errors[path] = "must be an object"
            continue
        sku = _text(item, f"{path}.sku", "sku", errors, max_length=32)
        size = item.get("size")
        size_text = str(size).strip() if isinstance(size, (str, int)) else ""
        if not size_text:
            errors[f"{path}.size"] = "is required"
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            errors[f"{path}.quantity"] = "must be a whole number"
        elif not 1 <= quantity <= MAX_QUANTITY:
            errors[f"{path}.quantity"] = f"must be between 1 and {MAX_QUANTITY}"
        else:
            lines.append(Line(sku=sku, size=size_text, quantity=quantity))
    return tuple(lines)


def _card(obj: dict[str, Any], today: date, errors: dict[str, str]) -> Card | None:
    number = re.sub(r"[\s-]", "", str(obj.get("card_number") or ""))
    if not number:
        errors["payment.card_number"] = "is required"
    elif not number.isdigit() or not 12 <= len(number) <= 19:
        errors["payment.card_number"] = "must be 12 to 19 digits"
    elif not luhn_ok(number):
        errors["payment.card_number"] = "is not a valid card number"
    month = _whole(obj.get("exp_month"))
    year = _whole(obj.get("exp_year"))
    if month is None or not 1 <= month <= 12:
        errors["payment.exp_month"] = "must be a month from 1 to 12"
    if year is None:
        errors["payment.exp_year"] = "must be a year, like 2030"
    elif year < 100:
        year += 2000
    if (
        month is not None
        and year is not None
        and 1 <= month <= 12
        and (year, month) < (today.year, today.month)
    ):
        errors["payment.exp_year"] = "the card has expired"
    cvc = str(obj.get("cvc") or "").strip()
    if not re.fullmatch(r"\d{3,4}", cvc):
        errors["payment.cvc"] = "must be 3 or 4 digits"
    if any(key.startswith("payment.") for key in errors):
        return None
    assert month is not None and year is not None
    return Card(number=number, exp_month=month, exp_year=year, cvc=cvc)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
