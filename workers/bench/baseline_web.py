"""The intake baseline: a bare Flask endpoint that starts one chain with one apply_async."""

from __future__ import annotations

import os

from flask import Flask, Response, jsonify, request

from workers.bench.baseline_app import start_chain

MESSAGES_ENV = "SHOESHOP_BENCH_MESSAGES"
DEFAULT_MESSAGES = 9


def create_app() -> Flask:
    app = Flask(__name__)
    messages = int(os.environ.get(MESSAGES_ENV, DEFAULT_MESSAGES))

    @app.post("/api/orders")
    def place() -> tuple[Response, int]:
        if request.get_json(silent=True) is None:
            return jsonify({"error": {"code": "invalid_json"}}), 400
        return jsonify({"id": start_chain(messages), "status": "PLACED"}), 202

    @app.get("/readyz")
    def ready() -> Response:
        return jsonify({"status": "ready"})

    return app
