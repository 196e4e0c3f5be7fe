"""Liveness and readiness: is the process up, and can it take a checkout (its database)."""

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
    """200 ``{"status": "ready", "broker": "ok" | "unreachable: …"}`` when the shop's database
    answers; 503 ``{"status": "unavailable", "problems": {"database": …}, "broker": …}`` when it
    does not. The broker is reported, never a reason to leave the rotation: a checkout made
    while it is away waits in the outbox for the relay, and with a failover list of nodes one
    node that hangs would otherwise take every web host out at once (one probe's timeout is
    spent on it before the next node is tried)."""
    broker = "ok"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_CHECK_TIMEOUT_S)
    except Exception as exc:
        broker = f"unreachable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    try:
        with engine_for("shop").connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is reported
        problems = {"database": str(exc).splitlines()[0]}
        return jsonify({"status": "unavailable", "problems": problems, "broker": broker}), 503
    return jsonify({"status": "ready", "broker": broker}), 200
