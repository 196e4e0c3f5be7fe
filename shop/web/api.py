"""The JSON API: products, checkout and order tracking."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from shop import catalog, readmodel
from shop.cancel import TooLateToCancel, UnknownOrder, request_cancellation
from shop.checkout import OutOfStock, checkout
from shop.sealing import PaymentProviderUnavailable, Sealer
from shop.validation import (
    KEY_PATH,
    IdempotencyKeyReused,
    UnreadableBody,
    ValidationFailed,
    read_json,
)
from shop.web.errors import error_response
from workers.messaging.database import engine_for

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_IDEMPOTENCY_KEY = 200
# Printable ASCII, as the IETF's Idempotency-Key draft has it (a Structured Fields string).
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")


@bp.get("/products")
def products() -> Response:
    with engine_for("shop").connect() as conn:
        return jsonify(catalog.list_products(conn))


@bp.post("/orders")
def place_order() -> tuple[Response, int] | Response:
    if not request.is_json:
        return error_response(400, "invalid_json", "the request body must be a JSON object")
    try:
        body = read_json(request.get_data())
    except UnreadableBody as exc:
        return error_response(400, "invalid_json", f"the request body cannot be read: {exc}")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        return error_response(
            422,
            "invalid_fields",
            "the Idempotency-Key header is invalid",
            {KEY_PATH: f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"},
        )
    sealer: Sealer = current_app.extensions["shoeshop.sealer"]
    try:
        placed = checkout(body, sealer, key)
    except IdempotencyKeyReused as exc:
        return error_response(
            422,
            "idempotency_key_reuse",
            "this Idempotency-Key was already used for a different request",
            exc.fields,
        )
    except ValidationFailed as exc:
        return error_response(422, "invalid_fields", "some fields are invalid", exc.fields)
    except OutOfStock as exc:
        return error_response(
            409, "out_of_stock", "not enough stock; nothing was reserved", exc.fields
        )
    except PaymentProviderUnavailable:
        return error_response(
            503, "payment_provider_unavailable", "card payments are unavailable, try again shortly"
        )
    location = url_for("api.get_order", order_id=placed.order_id)
    response = jsonify({"id": placed.order_id, "status": "PLACED", "links": {"self": location}})
    response.headers["Location"] = location
    return response, 202


def _no_such_order(order_id: str) -> tuple[Response, int]:
    return error_response(404, "not_found", f"no order has the id {order_id}")


@bp.get("/orders/<order_id:order_id>")
def get_order(order_id: str) -> tuple[Response, int] | Response:
    with engine_for("shop").connect() as conn:
        view = readmodel.order_view(conn, order_id)
    if view is None:
        return _no_such_order(order_id)
    return jsonify(view)


@bp.post("/orders/<order_id:order_id>/cancel")
def cancel_order(order_id: str) -> tuple[Response, int]:
    try:
        request_cancellation(order_id)
    except UnknownOrder:
        return _no_such_order(order_id)
    except TooLateToCancel as exc:
        return error_response(409, "too_late_to_cancel", str(exc))
    location = url_for("api.get_order", order_id=order_id)
    return jsonify(
        {"id": order_id, "status": "CANCELLATION_REQUESTED", "links": {"self": location}}
    ), 202
