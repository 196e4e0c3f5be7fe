"""The OpenAPI 3 description of the JSON API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__, url_prefix="/api")

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, **extra}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The order's id, a UUID.",
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "fields"],
                "properties": {
                    "code": {"type": "string", "example": "invalid_fields"},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "description": "Each invalid field, by its path, with what is wrong.",
                        "additionalProperties": {"type": "string"},
                    },
                },
            }
        },
    },
    "Product": {
        "type": "object",
        "required": ["sku", "name", "brand", "colour", "price_cents", "currency", "sizes"],
        "properties": {
            "sku": {"type": "string"},
            "name": {"type": "string"},
            "brand": {"type": "string"},
            "colour": {"type": "string"},
            "price_cents": {"type": "integer"},
            "currency": {"type": "string"},
            "sizes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["size", "available"],
                    "properties": {"size": {"type": "string"}, "available": {"type": "integer"}},
                },
            },
        },
    },
    "NewOrder": {
        "type": "object",
        "required": ["customer", "shipping_address", "items", "payment"],
        "properties": {
            "customer": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {"name": _text(100), "email": _text(200, format="email")},
            },
            "shipping_address": {
                "type": "object",
                "required": ["line1", "city", "postal_code", "country"],
                "properties": {
                    "line1": _text(200),
                    "city": _text(200),
                    "postal_code": _text(200),
                    "country": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                },
            },
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 20,
                "items": {
                    "type": "object",
                    "required": ["sku", "size", "quantity"],
                    "properties": {
                        "sku": _text(32, example="RUN-001"),
                        "size": {"type": "string", "example": "42"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
                    },
                },
            },
            "payment": {
                "type": "object",
                "description": "Sealed for the payment provider at once; never stored or logged.",
                "required": ["card_number", "exp_month", "exp_year", "cvc"],
                "properties": {
                    "card_number": {"type": "string", "pattern": "^[0-9 -]{12,23}$"},
                    "exp_month": {"type": "integer", "minimum": 1, "maximum": 12},
                    "exp_year": {
                        "type": "integer",
                        "minimum": 2000,
                        "maximum": 2100,
                        "description": "This year to 20 years ahead; an earlier year has expired.",
                    },
                    "cvc": {"type": "string", "pattern": "^[0-9]{3,4}$"},
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["PLACED"]},
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {"self": {"type": "string"}},
            },
        },
    },
    "CancellationAccepted": {
        "type": "object",
        "required": ["id", "status", "links"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["CANCELLATION_REQUESTED"]},
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {"self": {"type": "string"}},
            },
        },
    },
    "Order": {
        "type": "object",
        "required": [
            "id",
            "status",
            "reason",
            "items",
            "total_cents",
            "currency",
            "payment",
            "shipment",
            "timeline",
        ],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {
                "type": "string",
                "enum": ["PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"],
            },
            "reason": {"type": ["string", "null"]},
            "cancellable": {"type": "boolean"},
            "cancel_requested": {"type": "boolean"},
            "delayed": {
                "description": "Set while a message about the order waits in the dead letters.",
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "since": {"type": "string", "format": "date-time"},
                            "stage": {"type": "string"},
                        },
                    },
                ],
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "name": {"type": "string"},
                        "size": {"type": "string"},
                        "quantity": {"type": "integer"},
                        "unit_price_cents": {"type": "integer"},
                    },
                },
            },
            "total_cents": {"type": "integer"},
            "currency": {"type": "string"},
            "payment": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "brand": {"type": "string"},
                    "last4": {"type": "string"},
                },
            },
            "shipment": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "carrier": {"type": "string"},
                            "tracking_number": {"type": "string"},
                        },
                    },
                ]
            },
            "timeline": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "source", "time"],
                    "properties": {
                        "type": {"type": "string"},
                        "source": {"type": "string"},
                        "time": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/products": {
        "get": {
            "operationId": "listProducts",
            "summary": "The catalogue with the stock of each size.",
            "responses": {
                "200": _body({"type": "array", "items": _ref("Product")}, "Every shoe."),
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
                    "schema": {"type": "string", "pattern": "^[\\x20-\\x7e]{1,200}$"},
                    "description": "A retried request with the same key and body returns the same "
                    "order; the same key with another body is refused (422, "
                    "`idempotency_key_reuse`).",
                }
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("NewOrder")}}},
            "responses": {
                "202": _body(_ref("Accepted"), "Accepted; the order goes on by events."),
                "400": _error(
                    "The body is not UTF-8 JSON, nests more than 10 levels, uses NaN or "
                    "Infinity, or repeats a key."
                ),
                "409": _error("Not enough stock; nothing was reserved."),
                "413": _error("The body is larger than 64 KiB."),
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
                "200": _body(_ref("Order"), "The order."),
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
                "202": _body(_ref("CancellationAccepted"), "The cancellation is on its way."),
                "404": _error("No order has that id."),
                "409": _error("The order has shipped (or is already cancelled)."),
            },
        }
    },
}


def spec() -> dict[str, Any]:
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
        "components": {"schemas": SCHEMAS},
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(spec())
