"""The OpenAPI 3.1 description of the JSON API, served at /api/openapi.json.

Every schema of a body is generated from its model in ``shop.bodies`` (msgspec's JSON Schema,
which is JSON Schema 2020-12, OpenAPI 3.1's own dialect), so the limits the description states
are the ones checkout enforces. A request field whose reader in ``shop.validation`` also takes
other shapes (digit text for a number, whitespace around text, a card number as printed) has
them folded in beside the model's own schema (``fold``): ``anyOf`` [the model's, the reader's
alternatives], ``not`` what the reader refuses, so the description says what the API accepts.
Only the paths are written here: which operation answers which status, with a reference to a
generated schema.
"""

from __future__ import annotations

from typing import Any

import msgspec
from flask import Blueprint, Response, jsonify

from shop import bodies
from shop.validation import MAX_JSON_DEPTH, Reader, field_readers
from shop.web.api import MAX_IDEMPOTENCY_KEY
from shop.web.app import MAX_REQUEST_BYTES
from workers.messaging import contracts

bp = Blueprint("openapi", __name__, url_prefix="/api")

JSON = "application/json"
REF_TEMPLATE = "#/components/schemas/{name}"
# The request's model and every response's: each one, and each object inside one, becomes an
# entry of components/schemas under its class name.
MODELS: tuple[type[msgspec.Struct], ...] = (bodies.NewOrder, *bodies.RESPONSES)


def _ref(model: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=model.__name__)}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(bodies.Error)}}}


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": msgspec.json.schema(contracts.Uuid),
    "description": "The order's id, a UUID as the shop writes them (lower case).",
}

PATHS: dict[str, Any] = {
    "/api/products": {
        "get": {
            "operationId": "listProducts",
            "summary": "The catalogue with the stock of each size.",
            "responses": {
                "200": _body({"type": "array", "items": _ref(bodies.Product)}, "Every shoe."),
            },
        }
    },
    "/api/orders": {
        "post": {
            "operationId": "placeOrder",
            "summary": "Check out: reserve the stock and accept the order for payment.",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "pattern": f"^[\\x20-\\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$",
                    },
                    "description": "A retried request with the same key and body returns the same "
                    "order; the same key with another body is refused (422, "
                    "`idempotency_key_reuse`).",
                }
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(bodies.NewOrder)}}},
            "responses": {
                "202": _body(_ref(bodies.Accepted), "Accepted; the order goes on by events."),
                "400": _error(
                    f"The body is not UTF-8 JSON, nests more than {MAX_JSON_DEPTH} levels, uses "
                    "NaN or Infinity, or repeats a key."
                ),
                "409": _error("Not enough stock; nothing was reserved."),
                "413": _error(f"The body is larger than {MAX_REQUEST_BYTES // 1024} KiB."),
                "422": _error(
                    "Some fields are invalid, each named in `fields` (text with control "
                    "characters or unpaired surrogates, digits other than ASCII 0-9, numbers "
                    "out of range); or `idempotency_key_reuse`."
                ),
                "503": _error("Card payments are unavailable for a moment."),
            },
        }
    },
    "/api/orders/{order_id}": {
        "get": {
            "operationId": "getOrder",
            "summary": "The order's status, payment, shipment and timeline.",
            "parameters": [ORDER_ID],
            "responses": {
                "200": _body(_ref(bodies.Order), "The order."),
                "404": _error("No order has that id."),
            },
        }
    },
    "/api/orders/{order_id}/cancel": {
        "post": {
            "operationId": "cancelOrder",
            "summary": "Ask to cancel the order; a paid order is refunded.",
            "parameters": [ORDER_ID],
            "responses": {
                "202": _body(_ref(bodies.CancellationAccepted), "The cancellation is on its way."),
                "404": _error("No order has that id."),
                "409": _error("The order has shipped (or is already cancelled)."),
            },
        }
    },
}


def schemas() -> dict[str, Any]:
    """components/schemas: every model in MODELS and every object inside one, by class name,
    as msgspec generates them, each request field folded with its reader (``fold``)."""
    _, components = msgspec.json.schema_components(MODELS, ref_template=REF_TEMPLATE)
    for model, key, reader in field_readers():
        properties = components[model.__name__]["properties"]
        properties[key] = fold(properties[key], reader)
    return components


def fold(generated: dict[str, Any], reader: Reader) -> dict[str, Any]:
    """A request field's schema: what its model takes (``generated``, msgspec's) and what its
    reader takes besides, less what the reader refuses; the description stays on the field."""
    description = generated.get("description")
    model = {key: value for key, value in generated.items() if key != "description"}
    alternatives, refused = reader.alternatives(model), reader.refused(model)
    if not alternatives and refused is None:
        return generated
    folded: dict[str, Any] = {"description": description} if description else {}
    folded["anyOf"] = [model, *alternatives]
    if refused is not None:
        folded["not"] = refused
    return folded


def spec() -> dict[str, Any]:
    """The whole description, as /api/openapi.json serves it."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shoeshop API",
            "version": "1",
            "description": (
                "JSON in and out. Every error is "
                '`{"error": {"code", "message", "fields": {name: message}}}`.'
            ),
        },
        "paths": PATHS,
        "components": {"schemas": schemas()},
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(spec())
