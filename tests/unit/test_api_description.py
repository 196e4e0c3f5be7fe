"""The API's description is generated from its models, with the event contracts' limits."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators
from msgspec import inspect

from shop import bodies
from shop.bodies import CARD_YEARS_AHEAD
from shop.validation import (
    WHITESPACE,
    ValidationFailed,
    field_readers,
    luhn_ok,
    parse_checkout,
)
from shop.web.openapi import MODELS, REF_TEMPLATE, fold, spec
from tests.support.shop import REVIEWED_SHAPES, order_body
from workers.messaging import contracts

SCHEMAS = spec()["components"]["schemas"]


def schema_at(path: str) -> dict[str, Any]:
    """The schema of a request field in the description: "customer.name", "items[].quantity"."""
    schema = SCHEMAS["NewOrder"]
    for part in path.split("."):
        schema = schema["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            schema = schema["items"]
        if "$ref" in schema:
            schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def model_schema_at(path: str) -> dict[str, Any]:
    """The model's own schema of a request field: the first of its ``anyOf`` when its reader
    folded other shapes in, else the field's schema."""
    schema = schema_at(path)
    return schema["anyOf"][0] if "anyOf" in schema else schema


@pytest.mark.parametrize(
    ("path", "limits"),
    [
        ("customer.name", {"maxLength": contracts.NAME_LENGTH, "pattern": contracts.LINE_PATTERN}),
        (
            "customer.email",
            {"maxLength": contracts.EMAIL_LENGTH, "pattern": contracts.EMAIL_PATTERN},
        ),
        *(
            (
                f"shipping_address.{name}",
                {"maxLength": contracts.ADDRESS_LENGTH, "pattern": contracts.LINE_PATTERN},
            )
            for name in ("line1", "city", "postal_code")
        ),
        ("shipping_address.country", {"pattern": contracts.COUNTRY_PATTERN}),
        ("items", {"minItems": 1, "maxItems": contracts.MAX_LINES}),
        ("items[].sku", {"maxLength": contracts.SKU_LENGTH, "pattern": contracts.SKU_PATTERN}),
        ("items[].size", {"maxLength": contracts.SIZE_LENGTH, "pattern": contracts.LINE_PATTERN}),
        ("items[].quantity", {"minimum": 1, "maximum": contracts.MAX_QUANTITY}),
    ],
)
def test_the_request_schema_carries_the_contracts_limits(path: str, limits: dict[str, Any]) -> None:
    schema = model_schema_at(path)

    assert {key: schema.get(key) for key in limits} == limits
    assert schema_at(path)["description"]


# Each request field that an event carries on, and the contract field that carries it.
CARRIED = [
    (bodies.Customer, "name", contracts.Customer, "name"),
    (bodies.Customer, "email", contracts.Customer, "email"),
    *((bodies.Address, f, contracts.Address, f) for f in ("line1", "city", "postal_code")),
    (bodies.Address, "country", contracts.Address, "country"),
    (bodies.OrderLine, "sku", contracts.PricedItem, "sku"),
    (bodies.OrderLine, "size", contracts.PricedItem, "size"),
    (bodies.OrderLine, "quantity", contracts.PricedItem, "quantity"),
    (bodies.NewOrder, "items", contracts.OrderPlaced, "items"),
]


def constraints(model: type[msgspec.Struct], name: str) -> dict[str, Any]:
    (info,) = (f for f in inspect.type_info(model).fields if f.name == name)
    kind = info.type.type if isinstance(info.type, inspect.Metadata) else info.type
    keys = ("min_length", "max_length", "pattern", "ge", "le")
    return {key: getattr(kind, key) for key in keys if getattr(kind, key, None) is not None}


@pytest.mark.parametrize(("request_model", "field", "event_model", "event_field"), CARRIED)
def test_the_edge_is_at_least_as_strict_as_the_event_behind_it(
    request_model: type[msgspec.Struct],
    field: str,
    event_model: type[msgspec.Struct],
    event_field: str,
) -> None:
    at_edge, in_event = constraints(request_model, field), constraints(event_model, event_field)

    assert at_edge.get("pattern") == in_event.get("pattern")
    for lower in ("min_length", "ge"):
        assert at_edge.get(lower, 0) >= in_event.get(lower, 0)
    for upper in ("max_length", "le"):
        if upper in in_event:
            assert at_edge[upper] <= in_event[upper]


def test_every_schema_in_the_description_is_generated_from_a_model() -> None:
    _, generated = msgspec.json.schema_components(MODELS, ref_template=REF_TEMPLATE)
    readers = {(model.__name__, key): reader for model, key, reader in field_readers()}

    # Every schema is msgspec's, but the request fields whose readers take other shapes too.
    assert set(generated) == set(SCHEMAS)
    for name, schema in generated.items():
        expected = dict(schema)
        if "properties" in schema:
            expected["properties"] = {
                key: fold(value, readers[name, key]) if (name, key) in readers else value
                for key, value in schema["properties"].items()
            }
        assert SCHEMAS[name] == expected, name
    # Those have the model's schema first in anyOf, then the reader's alternatives, less what
    # the reader refuses, and keep the model's description.
    folded = 0
    for (name, key), reader in readers.items():
        value, described = generated[name]["properties"][key], SCHEMAS[name]["properties"][key]
        own = {k: v for k, v in value.items() if k != "description"}
        if "anyOf" not in described:
            assert not reader.alternatives(own) and described == value, f"{name}.{key}"
            continue
        folded += 1
        assert described["anyOf"] == [own, *reader.alternatives(own)], f"{name}.{key}"
        assert described.get("not") == reader.refused(own), f"{name}.{key}"
        assert described["description"] == value["description"], f"{name}.{key}"
    assert folded == len(readers) == 13  # every value field of a checkout takes another shape
    for name in SCHEMAS:  # and each is named after its model, a Struct in shop.bodies
        model = getattr(bodies, name)
        assert issubclass(model, (bodies.RequestBody, bodies.ResponseBody)), name
    assert {"NewOrder", "Error", "Product", "Accepted", "CancellationAccepted", "Order"} <= set(
        SCHEMAS
    )


def test_every_body_in_the_paths_refers_to_a_generated_schema() -> None:
    refs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "content" in node:
                schema = node["content"]["application/json"]["schema"]
                refs.append(schema.get("$ref") or schema["items"]["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec()["paths"])

    assert refs
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(SCHEMAS)


def test_every_request_field_and_every_object_is_described() -> None:
    for name in ("Customer", "Address", "OrderLine", "Card", "NewOrder"):
        for field, schema in SCHEMAS[name]["properties"].items():
            assert "$ref" in schema or schema.get("description"), f"{name}.{field}"
    for name, schema in SCHEMAS.items():
        assert schema.get("description"), name


def test_a_response_names_every_field_it_may_carry() -> None:
    # forbid_unknown_fields: a field a response gains without its model fails the API's fuzz test.
    for name, schema in SCHEMAS.items():
        request = name in {"NewOrder", "Customer", "Address", "OrderLine", "Card"}
        assert schema.get("additionalProperties", True) is request, name


# --- what the API accepts is what the description says ------------------------------------------
#
# A checkout body is accepted (parse_checkout) if and only if it is valid against the description's
# request schema, with the 2020-12 validator, but for what no schema can say, which these tests
# keep out of the way or check on their own: the card number's Luhn digit, the expiry against
# today, and a JSON integer written as one (JSON Schema's "integer" takes 1.0, which the API
# refuses: its validator here reads "integer" as a JSON integer, not a boolean, not a float).

TODAY = date(2026, 11, 26)
_JSON_INTEGER = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
)
RequestValidator = validators.extend(Draft202012Validator, type_checker=_JSON_INTEGER)
REQUEST = RequestValidator(
    {"$ref": "#/components/schemas/NewOrder", "components": {"schemas": SCHEMAS}}
)


def accepted(body: dict[str, Any]) -> bool:
    try:
        parse_checkout(body, TODAY)
    except ValidationFailed:
        return False
    return True


def with_value(path: str, value: Any) -> dict[str, Any]:
    """A valid order with the field at ``path`` ("payment.cvc", "items[].size") set."""
    body = order_body()
    *parents, name = path.replace("[]", ".0").split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[name] = value
    return body


# The reviewer's examples (issue #11), each with what the shop decided: kept and described, or
# refused as an accident of reading.
REVIEWED = [(path.replace("[0]", "[]"), value, kept) for path, value, kept in REVIEWED_SHAPES]


@pytest.mark.parametrize(("path", "value", "decided"), REVIEWED)
def test_each_reviewed_shape_is_accepted_exactly_when_the_description_says_so(
    path: str, value: Any, decided: bool
) -> None:
    body = with_value(path, value)

    assert accepted(body) is REQUEST.is_valid(body) is decided


WHITESPACE_LIKE = [*WHITESPACE, "\x1c", "\x1f", "\ufeff", "\u200b", "\x00"]
SEPARATORS = [" ", "-", "  ", "--", "\t", "\x1c", "\x1d", "\xa0", "_", ".", "/", " - "]


def padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    around = st.text(st.sampled_from(WHITESPACE_LIKE), max_size=3)
    return st.tuples(around, values, around).map("".join)


def digit_text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=0, max_size=max_size)


@st.composite
def printed_cards(draw: st.DrawFn) -> str:
    """A card number with its digits in groups; Luhn-valid numbers among them."""
    digits = draw(
        st.one_of(
            st.sampled_from(["4242424242424242", "4000000000000002", "378282246310005"]),
            digit_text(22),
        )
    )
    text = ""
    for digit in digits:
        if text and draw(st.integers(0, 4)) == 0:
            text += draw(st.sampled_from(SEPARATORS))
        text += digit
    if draw(st.booleans()):
        text = draw(st.sampled_from(["", "-", " "])) + text + draw(st.sampled_from(["", "-", " "]))
    return text


# Values one field or another takes, to be tried in every field and with whitespace around.
NEAR_VALID = [
    *("Ada", "RUN-001", "ada@example.com", "a b", "42", "x" * 8, "NL", "nl", "Nl"),
    *("1", "09", "12", "31", "2031", "123", "0123", "4242 4242 4242 4242"),
]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, 1, 9, 10, 11, 12, 13, 31, 99, 100, 999, 1000, 2031, 9999, 10**8 - 1]),
    st.sampled_from([10**8, 4242424242424242, -4242424242424242, 2**53 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 2.0, 12.0, 42.0, 2031.0, 0.5]),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=4),
    st.text(st.characters(categories=["Cc", "Cs", "Zs", "Zl", "Zp", "Nd", "No"]), max_size=4),
    padded(digit_text()),
    padded(st.text(st.sampled_from("+-.eE_0123456789²٣\uff11"), max_size=6)),
    padded(printed_cards()),
    padded(st.text(st.sampled_from("abnlzNLZß\u0130\u0131"), max_size=3)),
    padded(st.sampled_from(NEAR_VALID)),
    padded(st.text(st.characters(codec="utf-8"), min_size=95, max_size=205)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
FIELDS = [
    "customer.name",
    "customer.email",
    "shipping_address.line1",
    "shipping_address.city",
    "shipping_address.postal_code",
    "shipping_address.country",
    "items[].sku",
    "items[].size",
    "items[].quantity",
    "payment.card_number",
    "payment.exp_month",
    "payment.exp_year",
    "payment.cvc",
]


def rules_hold(path: str, value: Any) -> bool:
    """The rules no schema can say, for a value the description takes: the card number's Luhn
    digit, and an expiry year from this one to 20 years ahead (the body's month is December,
    so no such year has expired)."""
    if path == "payment.card_number":
        return luhn_ok(re.sub("[^0-9]", "", value))
    if path == "payment.exp_year":
        year = int(value.strip(WHITESPACE)) if isinstance(value, str) else value
        year += 2000 if year < 100 else 0
        return TODAY.year <= year <= TODAY.year + CARD_YEARS_AHEAD
    return True


@pytest.mark.parametrize("path", FIELDS)
@given(value=ODD_VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_an_odd_value_is_accepted_exactly_when_the_description_takes_it(
    path: str, value: Any
) -> None:
    body = with_value(path, value)
    described = REQUEST.is_valid(body)

    assert accepted(body) is (described and rules_hold(path, value)), (path, value, described)


def leaf_paths(name: str = "NewOrder", path: str = "") -> list[str]:
    """Every value field of the request schema, by path."""
    found = []
    for key, schema in SCHEMAS[name]["properties"].items():
        at = f"{path}.{key}" if path else key
        if "$ref" in schema:
            found += leaf_paths(schema["$ref"].rsplit("/", 1)[1], at)
        elif "$ref" in schema.get("items", {}):
            found += leaf_paths(schema["items"]["$ref"].rsplit("/", 1)[1], f"{at}[]")
        else:
            found.append(at)
    return found


def test_every_value_field_is_tried() -> None:
    assert sorted(FIELDS) == sorted(leaf_paths())
    assert len(FIELDS) == len(field_readers())
