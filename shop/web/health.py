"""Liveness and readiness: is the process up, and can it reach its database and the broker."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from config.celery import app as celery_app
from workers.messaging.database import engine_for

bp = Blueprint("health", __name__)

# A readiness probe must answer quickly even when the broker is away.
BROKER_CHECK_TIMEOUT_S = 2.0


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    problems: dict[str, str] = {}
    try:
        with engine_for("shop").connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is reported
        problems["database"] = str(exc).splitlines()[0]
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_S)
    except Exception as exc:
        problems["broker"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problems:
        return jsonify({"status": "unavailable", "problems": problems}), 503
    return jsonify({"status": "ready"}), 200
