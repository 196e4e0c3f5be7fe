"""Checking a checkout request: pure, and every problem named by its field.

Whatever is accepted here must be something every component behind the shop can carry, so each
kind of value has one check, applied to every field of that kind:

- the body (``read_json``): refuses what a JSON parser cannot or should not read;
- text (``_text``): refuses control characters and lone surrogates, and keeps to the length of
  the column it ends up in;
- digits (``is_ascii_digits``): ASCII 0-9 only, never whatever ``str.isdigit()`` takes;
- whole numbers (``_whole``): JSON integers or digit text, never booleans or floats, and each
  bounded by its field to what the workers and the payment gateway accept;
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MAX_QUANTITY = 10
MAX_LINES = 20
# Cards are issued for a few years; a year further ahead is a typo (or a probe) that the gateway
# would refuse once the card is sealed and the order placed.
CARD_YEARS_AHEAD = 20
# In characters (code points, as PostgreSQL counts a VARCHAR and Python's len()). SKU and size are
# looked up in products.sku VARCHAR(32) and stock.size VARCHAR(8); name, email and address are
# kept in JSON columns, which have no limit of their own.
NAME_LENGTH, EMAIL_LENGTH, ADDRESS_LENGTH, SKU_LENGTH, SIZE_LENGTH = 100, 200, 200, 32, 8
# A checkout body is three levels deep (body, items, a line); anything much deeper is not one.
MAX_JSON_DEPTH = 10
# C0 and C1 control characters, NUL among them (PostgreSQL refuses it in text), and lone
# surrogates (JSON can escape one, "\ud83d", but UTF-8 cannot encode it, so no worker could store
# or send it). No field of a checkout is more than one line, so none has a use for a tab either.
_UNCARRIABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
ADDRESS_FIELDS = ("line1", "city", "postal_code", "country")
# The API's header, named like a field when it is what is wrong.
KEY_PATH = "Idempotency-Key"


class UnreadableBody(ValueError):
    """The body is not JSON the shop reads; the message says why, never what the body held."""


class ValidationFailed(Exception):
    """The request is well-formed JSON but some fields are wrong; ``fields`` says which and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields


class IdempotencyKeyReused(ValidationFailed):
    """The Idempotency-Key already placed an order for another body; nothing was placed."""

    def __init__(self) -> None:
        super().__init__({KEY_PATH: "has already been used for a different request"})


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


def read_json(raw: bytes) -> Any:
    """Decode a request body, or raise UnreadableBody for what a JSON parser cannot or should not
    read: bytes that are not UTF-8 (an encoded surrogate among them), the NaN, Infinity and
    -Infinity that Python's parser takes though JSON has no such numbers, an object with the
    same key twice (parsers disagree on which one counts), an integer of more than 4300 digits,
    and nesting deeper than MAX_JSON_DEPTH (past about 1000 levels Python's parser raises
    RecursionError, which is no ValueError)."""
    too_deep = f"it is nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except UnreadableBody:
        raise
    except RecursionError:
        raise UnreadableBody(too_deep) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UnreadableBody(f"it is not JSON: {exc}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise UnreadableBody(too_deep)
    return value


def _no_constant(name: str) -> Any:
    raise UnreadableBody(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise UnreadableBody("an object has the same key twice")
    return obj


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value``, level by level (no recursion)."""
    depth, level = 0, [value]
    while level := [item for item in level if isinstance(item, (dict, list))]:
        depth += 1
        level = [c for item in level for c in (item.values() if isinstance(item, dict) else item)]
    return depth


def is_ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the ASCII digits 0-9 and nothing else. ``str.isdigit()``
    also takes "²" (which int() then refuses) and "٣" (which int() reads as 3)."""
    return text.isascii() and text.isdigit()


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
    name = _text(customer.get("name"), "customer.name", errors, max_length=NAME_LENGTH)
    email = _text(customer.get("email"), "customer.email", errors, max_length=EMAIL_LENGTH)
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


def _text(value: Any, path: str, errors: dict[str, str], *, max_length: int) -> str:
    """``value`` stripped, or "" with the error recorded at ``path``. Refused: nothing or blanks,
    anything but a string, more than ``max_length`` characters, and a control character or a
    lone surrogate anywhere in what would be kept (see _UNCARRIABLE)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[path] = "is required"
        return ""
    if not isinstance(value, str):
        errors[path] = "must be text"
        return ""
    if len(value) > max_length:
        errors[path] = f"must be at most {max_length} characters"
        return ""
    if _UNCARRIABLE.search(value.strip()):
        errors[path] = "must not contain control characters or unpaired surrogates"
        return ""
    return value.strip()


def _address(obj: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    address = {
        key: _text(obj.get(key), f"shipping_address.{key}", errors, max_length=ADDRESS_LENGTH)
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
        sku = _text(item.get("sku"), f"{path}.sku", errors, max_length=SKU_LENGTH)
        size = item.get("size")
        if isinstance(size, int) and not isinstance(size, bool) and 0 < size < 10**SIZE_LENGTH:
            size = str(size)  # a size may come as a number: 42
        size_text = _text(size, f"{path}.size", errors, max_length=SIZE_LENGTH)
        quantity = _whole(item.get("quantity"))
        if quantity is None:
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
    elif not is_ascii_digits(number) or not 12 <= len(number) <= 19:
        errors["payment.card_number"] = "must be 12 to 19 digits"
    elif not luhn_ok(number):
        errors["payment.card_number"] = "is not a valid card number"
    month = _whole(obj.get("exp_month"))
    year = _whole(obj.get("exp_year"))
    if month is None or not 1 <= month <= 12:
        errors["payment.exp_month"] = "must be a month from 1 to 12"
    if year is not None and year < 100:
        year += 2000
    last_year = today.year + CARD_YEARS_AHEAD
    if year is None or year > last_year:
        errors["payment.exp_year"] = f"must be a year from {today.year} to {last_year}"
    elif month is not None and 1 <= month <= 12 and (year, month) < (today.year, today.month):
        errors["payment.exp_year"] = "the card has expired"
    cvc = str(obj.get("cvc") or "").strip()
    if not is_ascii_digits(cvc) or not 3 <= len(cvc) <= 4:
        errors["payment.cvc"] = "must be 3 or 4 digits"
    if any(key.startswith("payment.") for key in errors):
        return None
    assert month is not None and year is not None
    return Card(number=number, exp_month=month, exp_year=year, cvc=cvc)


def _whole(value: Any) -> int | None:
    """A JSON integer, or text of one to nine ASCII digits (the form sends text), as an int; None
    for anything else: a boolean, a float (1.0, 1e300, NaN, Infinity), a sign, other digits
    ("²", "٣"). The caller bounds it to what its field may be."""
    if isinstance(value, str) and len(value.strip()) <= 9 and is_ascii_digits(value.strip()):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None
