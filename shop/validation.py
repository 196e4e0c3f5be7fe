"""Checking a checkout request: pure, and every problem named by its field.

The request's model is ``shop.bodies.NewOrder``, whose limits are the event contracts' own; this
module reads a decoded body against it in steps:

1. the body (``read_json``): refuses what a JSON parser cannot or should not read;
2. the model, field by field (``_read_struct``): each value is first read by the field's
   ``Reader``, which also takes a few friendlier shapes (whitespace around text and digits
   dropped, digit text as a number, a size as a number, a card number as printed with single
   spaces or hyphens between digits, a country in lower case) and says so in JSON Schema for
   the API's description; then it is checked with
   ``msgspec.convert(value, type=<the field's type>, strict=True)``. msgspec stops at the
   first error, so each field is converted on its own and every failure is kept, in the words
   of the constraint it broke (``_message``);
3. what no field's type can say (``_check_card``): the card number's Luhn digit, a two-digit
   year read as 20xx, a year at most CARD_YEARS_AHEAD ahead, and a card not yet expired.

What passes is converted to NewOrder whole, then handed on as a ``CheckoutRequest``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import inspect

from shop import bodies
from shop.bodies import CARD_YEARS_AHEAD
from workers.messaging.contracts import LINE_PATTERN, SIZE_LENGTH, UNCARRIABLE
from workers.messaging.envelope import unanchored

# A checkout body is three levels deep (body, items, a line); anything much deeper is not one.
MAX_JSON_DEPTH = 10
# The API's header, named like a field when it is what is wrong.
KEY_PATH = "Idempotency-Key"
# Digit text with more digits than this (zeros first aside) is not read as a number: int() of
# text has costs and limits of its own (more than 4300 digits raise), and no field takes a
# number of ten digits.
_MAX_DIGIT_TEXT = 9

UNCARRIABLE_MESSAGE = "must not contain control characters or unpaired surrogates"
# What a field says when its value breaks the pattern of its type but is carriable text.
_PATTERN_MESSAGES = {
    "customer.email": "is not a valid email address",
    "shipping_address.country": "must be a two-letter country code, like NL",
    "items[].sku": "must be letters, digits and hyphens only",
}
# Fields with one message for every way the value can be wrong (a missing text aside, which is
# "is required"): what the shopper has to type, rather than which constraint failed.
_FIELD_MESSAGES = {
    "payment.card_number": "must be 12 to 19 digits",
    "payment.exp_month": "must be a month from 1 to 12",
    "payment.cvc": "must be 3 or 4 digits",
}
_CARRIABLE = Annotated[str, msgspec.Meta(pattern=LINE_PATTERN)]
# The constraints msgspec checks, in the order a value is tried against them (after its type).
_CONSTRAINTS: dict[type[Any], tuple[str, ...]] = {
    inspect.StrType: ("min_length", "max_length", "pattern"),
    inspect.IntType: ("ge", "le"),
}


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
    same key twice (parsers disagree on which one counts), a number too large for a float
    (1e999, Infinity once read), an integer of more than 4300 digits,
    and nesting deeper than MAX_JSON_DEPTH (past about 1000 levels Python's parser raises
    RecursionError, which is no ValueError)."""
    too_deep = f"it is nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            object_pairs_hook=_unique_keys,
        )
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


def _finite(text: str) -> float:
    """A JSON number with a fraction or an exponent, which Python reads as a float: 1e999 would
    be Infinity, which JSON has no number for (no field takes a float: the model refuses one)."""
    number = float(text)
    if math.isinf(number):
        raise UnreadableBody(f"{text[:20]} is beyond any JSON number the shop reads")
    return number


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
    """Turn a decoded JSON body into a request, or raise ValidationFailed with every error.

    ``raw`` is what ``read_json`` returned; ``today`` is the day a card's expiry is checked
    against. The errors are keyed by the field's path in the body ("customer.email",
    "items[0].quantity"; "body" when it is not an object), each with what is wrong as a
    fragment that follows the field's name ("is required").
    """
    if not isinstance(raw, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    last_year = today.year + CARD_YEARS_AHEAD
    messages = {
        **_FIELD_MESSAGES,
        "payment.exp_year": f"must be a year from {today.year} to {last_year}",
    }
    read = _read_struct(bodies.NewOrder, raw, "", errors, messages)
    _check_card(read["payment"], today, errors, messages)
    _check_deliverable(read.get("customer"), errors)
    if errors:
        raise ValidationFailed(errors)
    # Every field passed on its own; the whole passes too, or _read_struct has a bug (a 500).
    order = msgspec.convert(read, type=bodies.NewOrder, strict=True)
    payment = order.payment
    return CheckoutRequest(
        name=order.customer.name,
        email=order.customer.email,
        address=msgspec.structs.asdict(order.shipping_address),
        lines=tuple(Line(sku=i.sku, size=i.size, quantity=i.quantity) for i in order.items),
        card=Card(
            number=payment.card_number,
            exp_month=payment.exp_month,
            exp_year=payment.exp_year,
            cvc=payment.cvc,
        ),
    )


# RFC 6761: no name under .invalid exists, so no mail reaches one; an erased customer's orders
# read erased@erased.invalid (workers.messaging.erasure), which no checkout may then take.
UNDELIVERABLE_DOMAIN = ".invalid"


def _check_deliverable(customer: Any, errors: dict[str, str]) -> None:
    email = customer.get("email") if isinstance(customer, dict) else None
    if (
        isinstance(email, str)
        and "customer.email" not in errors
        and email.strip().rstrip(".").lower().endswith(UNDELIVERABLE_DOMAIN)
    ):
        errors["customer.email"] = "is in the .invalid domain, where no mail is delivered"


# --- step 2: each field against its type in the model -------------------------------------------


@dataclass(frozen=True)
class _Part:
    """A field of a request model, as the walk needs it."""

    name: str  # in Python
    key: str  # in JSON
    type: Any  # the annotated type, with its limits: what a value is converted to
    info: Any  # msgspec's description of it (StrType, IntType, ListType, StructType)
    model: type[msgspec.Struct] | None  # the field's model when it is an object
    item_model: type[msgspec.Struct] | None  # the items' model when it is a list of objects


@functools.cache
def _parts_of(model: type[msgspec.Struct]) -> tuple[_Part, ...]:
    """The fields of ``model``, each looked up once: msgspec resolves a model's annotations
    and describes its types far more slowly than it converts a value."""
    parts = []
    for field_info in msgspec.structs.fields(model):
        info = inspect.type_info(field_info.type)
        if isinstance(info, inspect.Metadata):
            info = info.type
        item = info.item_type if isinstance(info, inspect.ListType) else None
        parts.append(
            _Part(
                name=field_info.name,
                key=field_info.encode_name,
                type=field_info.type,
                info=info,
                model=info.cls if isinstance(info, inspect.StructType) else None,
                item_model=item.cls if isinstance(item, inspect.StructType) else None,
            )
        )
    return tuple(parts)


def _read_struct(
    model: type[msgspec.Struct],
    raw: Any,
    path: str,
    errors: dict[str, str],
    messages: dict[str, str],
) -> dict[str, Any]:
    """The fields of ``model`` read from the object ``raw`` (a dict from the JSON body), by name:
    each value as read and converted, None where it failed. Every failure is recorded in
    ``errors`` at its path (``path`` is the object's own, "" for the body). An object that is
    missing or is no object is named, and its fields are reported missing too."""
    if not isinstance(raw, dict):
        errors[path] = "is required" if raw is None else "must be an object"
        raw = {}
    read: dict[str, Any] = {}
    for part in _parts_of(model):
        at = f"{path}.{part.name}" if path else part.name
        value = raw.get(part.key)
        if part.model is not None:
            read[part.name] = _read_struct(part.model, value, at, errors, messages)
        elif isinstance(part.info, inspect.ListType):
            read[part.name] = _read_list(part, value, at, errors, messages)
        else:
            read[part.name] = _read_leaf(part, value, at, errors, messages)
    return read


def _read_list(
    part: _Part, raw: Any, path: str, errors: dict[str, str], messages: dict[str, str]
) -> list[dict[str, Any]]:
    """A list of objects (the order's items), each read by ``_read_struct``; its length is
    bounded by the list's own min_length and max_length."""
    info, item_model = part.info, part.item_model
    assert isinstance(info, inspect.ListType) and item_model is not None
    if not isinstance(raw, list) or len(raw) < (info.min_length or 1):
        errors[path] = "must be a non-empty list"
        return []
    if info.max_length is not None and len(raw) > info.max_length:
        errors[path] = f"must have at most {info.max_length} lines"
        return []
    read = []
    for index, item in enumerate(raw):
        at = f"{path}[{index}]"
        if not isinstance(item, dict):
            errors[at] = "must be an object"
            continue
        read.append(_read_struct(item_model, item, at, errors, messages))
    return read


def _read_leaf(
    part: _Part, raw: Any, path: str, errors: dict[str, str], messages: dict[str, str]
) -> Any:
    """One value (text or a number) read by the field's Reader, then converted to the field's
    annotated type in the model; None with the error recorded if it fails."""
    field_name = re.sub(r"\[\d+\]", "[]", path)  # items[3].size → items[].size
    value = _reader_for(field_name, part.info).read(raw)
    try:
        return msgspec.convert(value, type=part.type, strict=True)
    except (msgspec.ValidationError, UnicodeEncodeError):  # see _converts
        errors[path] = _message(field_name, part.info, value, messages)
        return None


def _message(field_name: str, info: Any, value: Any, messages: dict[str, str]) -> str:
    """What is wrong with ``value``, which ``info``'s type refused, in the field's words."""
    if isinstance(info, inspect.StrType) and (value is None or value == ""):
        return "is required"
    if field_name in messages:
        return messages[field_name]
    broken = _broken_constraint(info, value)
    if isinstance(info, inspect.IntType):
        if broken == "type":
            return "must be a whole number"
        return f"must be between {info.ge} and {info.le}"
    if broken == "type":
        return "must be text"
    if broken == "min_length":
        return "is required"
    if broken == "max_length":
        return f"must be at most {info.max_length} characters"
    if not _converts(value, _CARRIABLE):
        return UNCARRIABLE_MESSAGE
    return _PATTERN_MESSAGES.get(field_name, "is not in the form this field takes")


def _broken_constraint(info: Any, value: Any) -> str:
    """The first of ``info``'s constraints that ``value`` breaks, each tried alone with
    msgspec: "type" (not text, not an integer), then "min_length", "max_length", "pattern" for
    text and "ge", "le" for integers."""
    base = str if isinstance(info, inspect.StrType) else int
    if not _converts(value, base):
        return "type"
    for name in _CONSTRAINTS[type(info)]:
        limit = getattr(info, name)
        if limit is not None and not _converts(
            value, Annotated[base, msgspec.Meta(**{name: limit})]
        ):
            return name
    raise AssertionError(f"{info} refused a value that breaks none of its constraints")


def _converts(value: Any, type_: Any) -> bool:
    """Whether msgspec converts ``value`` to ``type_``. Text with a lone surrogate (JSON can
    escape one, "\\ud800") makes msgspec raise UnicodeEncodeError rather than refuse it where
    no pattern is checked first (an integer's type, a length): refused all the same."""
    try:
        msgspec.convert(value, type=type_, strict=True)
    except (msgspec.ValidationError, UnicodeEncodeError):
        return False
    return True


# --- the shapes a value may come in besides its model's -----------------------------------------
#
# Each field is read by a Reader before its model's type checks it. A Reader also says, in JSON
# Schema, what that reading lets in besides the model's own values: shop.web.openapi folds it into
# the field's schema in the API's description (``anyOf``: the model's schema, then these;
# ``not``: what the model's schema takes but the reader refuses), so the description says what
# the API accepts, declared here beside the code that accepts it. tests/unit/test_api_description
# checks that a body is accepted if and only if it is valid against the description, field by
# field, but for the rules no schema can say (_check_card's; and a JSON integer written as one:
# JSON Schema's "integer" takes 1.0, which this API refuses).
#
# Patterns are written with escapes (\xNN, \uNNNN) and plain classes, which Python's re and
# JSON Schema's ECMA-262 regular expressions read alike.


def _code_points(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(chr(point) for low, high in ranges for point in range(low, high + 1))


def _escaped_class(ranges: tuple[tuple[int, int], ...]) -> str:
    def escape(point: int) -> str:
        return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"

    return "".join(escape(lo) + (f"-{escape(hi)}" if hi > lo else "") for lo, hi in ranges)


# Whitespace, as Unicode's White_Space property has it: what is dropped around text and digits.
# Not str.strip()'s whitespace, which also takes the information separators U+001C-U+001F (control
# characters, refused in text like any other) and differs from JSON Schema's \s besides.
_WHITESPACE_RANGES = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
WHITESPACE = _code_points(_WHITESPACE_RANGES)
_WS = _escaped_class(_WHITESPACE_RANGES)  # the same, inside a regular expression's [...]
# Text that is whitespace alone (or nothing): never a value, though a line's pattern takes it.
_BLANK: dict[str, Any] = {"type": "string", "pattern": f"^[{_WS}]*$"}
# A card number as printed: groups of ASCII digits, one space or hyphen between two of them.
_CARD_GROUPS = re.compile(r"[0-9]+(?:[ -][0-9]+)*")

Schema = dict[str, Any]


def _no_alternative(model: Schema) -> list[Schema]:
    return []


def _nothing_refused(model: Schema) -> Schema | None:
    return None


@dataclass(frozen=True)
class Reader:
    """How a field's value is read before its model's type checks it (``read``), and what that
    reading takes in JSON Schema: ``alternatives``, the schemas of the shapes it takes besides
    the model's own values, and ``refused``, the schema of model values it refuses (or None);
    both are made from the model's schema of the field (its limits, without its description),
    so they follow the model's limits."""

    read: Callable[[Any], Any]
    alternatives: Callable[[Schema], list[Schema]] = _no_alternative
    refused: Callable[[Schema], Schema | None] = _nothing_refused


def _trimmed(value: Any) -> Any:
    """Text without the whitespace around it; anything else as it is."""
    return value.strip(WHITESPACE) if isinstance(value, str) else value


def _padded(model: Schema) -> list[Schema]:
    """Text the model takes once the whitespace around it is dropped (with that whitespace)."""
    low, high = max(model.get("minLength", 1), 1), model.get("maxLength")
    if model["pattern"] == LINE_PATTERN:
        # Any line: inside the whitespace, a line of the model's length.
        core = f"[^{UNCARRIABLE}]{{{low},{high}}}"
    else:
        # A pattern whose text holds no whitespace (an email address, a code): what is between
        # the whitespace is the value, as long as the model allows.
        core = f"(?:{unanchored(model['pattern'])})"
        if high is not None:
            core = f"(?=[^{_WS}]{{{low},{high}}}[{_WS}]*$){core}"
    return [{"type": "string", "pattern": f"^[{_WS}]*{core}[{_WS}]*$"}]


def _blank(model: Schema) -> Schema | None:
    """Whitespace alone, which a line's pattern takes and trimming leaves empty; other patterns
    (an email address, a code) take no whitespace at all."""
    return _BLANK if model["pattern"] == LINE_PATTERN else None


TEXT = Reader(_trimmed, _padded, _blank)
"""Text, with the whitespace around it dropped (as a form field may send it)."""


def _whole(value: Any) -> Any:
    """Digit text (the form sends text) as its int: ASCII digits with whitespace around, any
    zeros first ("09"), at most nine digits after them (int() of long text has costs and limits
    of its own). Anything else as it is, for the model to take (a JSON integer) or refuse (a
    boolean, a float, a sign, digits other than ASCII's: "²", "٣")."""
    if isinstance(value, str):
        digits = value.strip(WHITESPACE)
        if is_ascii_digits(digits):
            significant = digits.lstrip("0") or "0"
            if len(significant) <= _MAX_DIGIT_TEXT:
                return int(significant)
    return value


def _digit_text(model: Schema) -> list[Schema]:
    """The digits of a number in the model's range, zeros first allowed, whitespace around."""
    numerals = numerals_between(model["minimum"], model["maximum"])
    return [{"type": "string", "pattern": f"^[{_WS}]*0*{numerals}[{_WS}]*$"}]


WHOLE = Reader(_whole, _digit_text)
"""A whole number: a JSON integer, or its digits as text (as a form sends it)."""


def numerals_between(low: int, high: int) -> str:
    """A regular expression (a group) matching the decimal numerals of every integer from
    ``low`` to ``high`` (0 <= low <= high), written without zeros first: 0 is "0"."""
    alternatives: list[str] = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(high, 10**length - 1)
        if first <= last:
            alternatives += _same_length(str(first), str(last))
    return f"(?:{'|'.join(alternatives)})"


def _same_length(first: str, last: str) -> list[str]:
    """Alternatives matching every numeral from ``first`` to ``last``, both of one length."""
    if first == last:
        return [first]
    head, rest = first[0], len(first) - 1
    if not rest:
        return [f"[{first}-{last}]"]
    if first[1:] == "0" * rest and last[1:] == "9" * rest:
        return [f"[{head}-{last[0]}][0-9]{{{rest}}}"]
    if head == last[0]:
        return [f"{head}(?:{'|'.join(_same_length(first[1:], last[1:]))})"]
    parts = [f"{head}(?:{'|'.join(_same_length(first[1:], '9' * rest))})"]
    if int(last[0]) - int(head) > 1:
        parts.append(f"[{int(head) + 1}-{int(last[0]) - 1}][0-9]{{{rest}}}")
    parts.append(f"{last[0]}(?:{'|'.join(_same_length('0' * rest, last[1:]))})")
    return parts


def _size(value: Any) -> Any:
    """A size may come as a whole number, 42: read as its text when it fits the column."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**SIZE_LENGTH:
        return str(value)
    return _trimmed(value)


SIZE = Reader(
    _size,
    lambda model: [
        *_padded(model),
        {"type": "integer", "minimum": 1, "maximum": 10**SIZE_LENGTH - 1},
    ],
    _blank,
)


def _card_number(value: Any) -> Any:
    """A card number as printed on the card, "4242 4242 4242 4242" or with hyphens, loses the
    one space or hyphen between two digits (and the whitespace around it). Only text: a JSON
    integer is refused (past 2**53 a JSON number loses digits in many a client, and
    -4242424242424242 is no card), as are separators anywhere else ("4242-", "4242--4242") and
    other characters between digits (control characters such as U+001C-U+001F among them)."""
    if not isinstance(value, str):
        return value
    number = value.strip(WHITESPACE)
    return re.sub("[ -]", "", number) if _CARD_GROUPS.fullmatch(number) else number


def _printed_card(model: Schema) -> list[Schema]:
    more = f"{{{model['minLength'] - 1},{model['maxLength'] - 1}}}"
    return [{"type": "string", "pattern": f"^[{_WS}]*[0-9](?:[ -]?[0-9]){more}[{_WS}]*$"}]


CARD_NUMBER = Reader(_card_number, _printed_card)


def _country(value: Any) -> Any:
    """A country code in lower case, "nl", is read in upper case; only ASCII letters are, so
    "ß" stays refused rather than read as "SS"."""
    value = _trimmed(value)
    return value.upper() if isinstance(value, str) and value.isascii() else value


COUNTRY = Reader(
    _country,
    lambda model: [{"type": "string", "pattern": f"^[{_WS}]*[A-Za-z]{{2}}[{_WS}]*$"}],
)


# How a field is read before its type is checked, by its path (any item's index as "[]"). Other
# text is read as TEXT, other numbers as WHOLE. The security code is text only, like the card
# number: a JSON integer would lose its zeros first (0123 is 123, a valid-looking other code).
_READERS: dict[str, Reader] = {
    "shipping_address.country": COUNTRY,
    "items[].size": SIZE,
    "payment.card_number": CARD_NUMBER,
}


def _reader_for(field_name: str, info: Any) -> Reader:
    return _READERS.get(field_name) or (WHOLE if isinstance(info, inspect.IntType) else TEXT)


def field_readers(
    model: type[msgspec.Struct] = bodies.NewOrder, path: str = ""
) -> list[tuple[type[msgspec.Struct], str, Reader]]:
    """Every value field of the request, as (its model, its name in JSON, its Reader): what the
    API's description needs to say what each field takes."""
    found = []
    for part in _parts_of(model):
        at = f"{path}.{part.name}" if path else part.name
        if part.model is not None:
            found += field_readers(part.model, at)
        elif part.item_model is not None:
            found += field_readers(part.item_model, f"{at}[]")
        else:
            found.append((model, part.key, _reader_for(at, part.info)))
    return found


# --- step 3: what no field's type can say -------------------------------------------------------


def _check_card(
    payment: dict[str, Any], today: date, errors: dict[str, str], messages: dict[str, str]
) -> None:
    """The card's rules beyond its fields' types, on the fields that passed them: the number's
    Luhn check digit, a two-digit year read as 2000 onwards, a year from this one to
    CARD_YEARS_AHEAD ahead, and an expiry not before this month. Changes ``payment`` in place
    (the year) and records what fails in ``errors``."""
    number, month, year = payment["card_number"], payment["exp_month"], payment["exp_year"]
    if number is not None and not luhn_ok(number):
        errors["payment.card_number"] = "is not a valid card number"
    if year is None:
        return
    if year < 100:
        year = payment["exp_year"] = 2000 + year
    if year > today.year + CARD_YEARS_AHEAD:
        errors["payment.exp_year"] = messages["payment.exp_year"]
    elif month is not None and (year, month) < (today.year, today.month):
        errors["payment.exp_year"] = "the card has expired"
