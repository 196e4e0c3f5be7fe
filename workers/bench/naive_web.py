"""The naive shop's checkout: the shop's validation and card sealing, one transaction, one chain."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from config.settings import get_settings
from shop.sealing import PaymentProviderUnavailable, Sealer
from shop.validation import UnreadableBody, ValidationFailed, parse_checkout, read_json
from workers.bench import naive_app, naive_store, naive_tables
from workers.messaging.envelope import utcnow


def _error(status: int, code: str, fields: dict[str, str] | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "fields": fields or {}}}), status


def create_app() -> Flask:
    app = Flask(__name__)
    sealer = Sealer(get_settings().gateway_url)

    @app.post("/api/orders")
    def place() -> tuple[Response, int]:
        """Validate as the shop does, seal the card, insert the order and reserve its stock,
        then start its chain: if the broker is away now, the order waits forever."""
        try:
            body = read_json(request.get_data())
            checkout = parse_checkout(body, utcnow().date())
        except UnreadableBody:
            return _error(400, "invalid_json")
        except ValidationFailed as exc:
            return _error(422, "invalid_fields", exc.fields)
        try:
            token = sealer.seal(checkout.card)
        except PaymentProviderUnavailable:
            return _error(503, "payment_provider_unavailable")
        try:
            order_id = naive_store.place(checkout, token)
        except naive_store.UnknownShoe:
            return _error(422, "invalid_fields", {"items": "no such shoe"})
        except naive_store.OutOfStock:
            return _error(409, "out_of_stock")
        naive_app.start_chain(order_id)
        return jsonify({"id": order_id, "status": naive_tables.PLACED}), 202

    @app.get("/readyz")
    def ready() -> Response:
        return jsonify({"status": "ready"})

    return app
