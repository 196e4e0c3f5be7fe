"""Liveness and readiness: is the process up, and can it take a checkout (its database)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from workers.messaging.database import engine_for

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 ``{"status": "ready"}`` when the shop's database answers, 503 ``{"status":
    "unavailable", "problems": {"database": "<first line of the error>"}}`` when it does not.

    The broker is not asked: a checkout made while it is away waits in the outbox for the relay,
    so a web that cannot reach it still takes orders; and with a failover list of nodes, one node
    that hangs would spend a probe's whole timeout before the next is tried, taking every web
    host out of the rotation at once. The broker is watched from the metrics instead
    (``shoeshop_metrics_source_up{source="broker"}``, alert ShoeshopMetricsSourceDown)."""
    try:
        with engine_for("shop").connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is reported
        problems = {"database": str(exc).splitlines()[0]}
        return jsonify({"status": "unavailable", "problems": problems}), 503
    return jsonify({"status": "ready"}), 200
