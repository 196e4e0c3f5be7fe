"""The API's description is generated from its models, with the event contracts' limits."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from msgspec import inspect

from shop import bodies
from shop.web.openapi import MODELS, REF_TEMPLATE, spec
from workers.messaging import contracts

SCHEMAS = spec()["components"]["schemas"]


def schema_at(path: str) -> dict[str, Any]:
    """The generated schema of a request field: "customer.name", "items[].quantity"."""
    schema = SCHEMAS["NewOrder"]
    for part in path.split("."):
        schema = schema["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            schema = schema["items"]
        if "$ref" in schema:
            schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


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
    schema = schema_at(path)

    assert {key: schema.get(key) for key in limits} == limits
    assert schema["description"]


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

    assert generated == SCHEMAS
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
