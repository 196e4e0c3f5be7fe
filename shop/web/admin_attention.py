"""Orders needing attention on the admin pages (issue #19): a compensation of theirs failed (a
refund the gateway refused, a parked refund or stock release) and waits for an operator. The
page /admin/attention lists them with two actions each (ask for the refund again; close with a
note); the JSON is GET /api/admin/attention and POST /api/admin/attention/<order id>. Both send
the command workers.operator_actions sends for `shoeshop attention`; orders decides and records.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from config.celery import app as celery_app
from shop.validation import UnreadableBody, read_json
from shop.web.errors import error_response
from workers.messaging.contracts import NOTE_LENGTH
from workers.operator_actions import (
    ACTIONS,
    InvalidCommand,
    NotNeedingAttention,
    needing_attention,
)
from workers.operator_actions import request as send

log = logging.getLogger(__name__)

UNAVAILABLE = "The shop's or operations' database did not answer. Try again shortly."
SENT = {
    "retry_refund": "The refund was asked for again; the order leaves this list once it is made.",
    "close": "The order's attention was closed; it leaves this list once orders records it.",
}


def add_routes(pages: Blueprint, api: Blueprint) -> None:
    """The page on the admin pages' blueprint, the JSON on the admin API's (their guards ask
    for the password; the API's wants a JSON body, the page's forms a CSRF token)."""
    pages.add_url_rule("/attention", "attention_page", attention_page, methods=["GET"])
    pages.add_url_rule(
        "/attention/<order_id:order_id>", "act_on_order", act_on_order, methods=["POST"]
    )
    api.add_url_rule("/attention", "attention_json", attention_json, methods=["GET"])
    api.add_url_rule(
        "/attention/<order_id:order_id>", "act_on_order_json", act_on_order_json, methods=["POST"]
    )


def attention_page() -> ResponseReturnValue:
    return _page()


def act_on_order(order_id: str) -> ResponseReturnValue:
    action, note = request.form.get("action", ""), request.form.get("note", "")
    try:
        send(celery_app, order_id, action, note)
    except InvalidCommand as exc:
        return _page(order_id=order_id, note=note, errors=exc.fields), 422
    except NotNeedingAttention as exc:
        return _page(problem=f"Not sent: {exc}."), 404 if not exc.known else 409
    except SQLAlchemyError:
        log.warning("operator action on %s not sent", order_id, exc_info=True)
        return _page(problem=UNAVAILABLE), 503
    flash(SENT[action], "ok")
    return redirect(url_for("admin.attention_page"), code=303)


def attention_json() -> ResponseReturnValue:
    """200 ``[{"order_id", "reason", "detail", "since", "status", "total_cents", "currency"}]``,
    oldest first; 503 when the shop's database does not answer."""
    try:
        rows = needing_attention()
    except SQLAlchemyError:
        log.warning("orders needing attention unavailable", exc_info=True)
        return error_response(503, "database_unavailable", "the shop's database did not answer")
    return jsonify(
        [{**row, "since": row["since"].isoformat() if row["since"] else None} for row in rows]
    )


def act_on_order_json(order_id: str) -> ResponseReturnValue:
    """``{"action": "retry_refund" | "close", "note"}`` → 202 ``{"event_id"}``: the command is
    sent, and orders records it in the order's stream; 400 no JSON object, 404 an order the shop
    does not know, 409 one it does not list as needing attention, 422 a field at fault (named),
    503 a database away."""
    try:
        body = read_json(request.get_data())
    except UnreadableBody as exc:
        return error_response(400, "invalid_json", f"the request body is unreadable: {exc}")
    if not isinstance(body, dict):
        return error_response(400, "invalid_json", "the request body must be a JSON object")
    fields = {name: body.get(name) for name in ("action", "note")}
    wrong = {
        name: "is required, as a string"
        for name, value in fields.items()
        if not isinstance(value, str)
    }
    if wrong:
        return _invalid(wrong)
    try:
        event = send(celery_app, order_id, str(fields["action"]), str(fields["note"]))
    except InvalidCommand as exc:
        return _invalid(exc.fields)
    except NotNeedingAttention as exc:
        if not exc.known:
            return error_response(404, "not_found", str(exc))
        return error_response(409, "not_needing_attention", str(exc))
    except SQLAlchemyError:
        log.warning("operator action on %s not sent", order_id, exc_info=True)
        return error_response(503, "database_unavailable", "operations' database did not answer")
    return jsonify({"event_id": event.id}), 202


def _page(
    *,
    order_id: str | None = None,
    note: str = "",
    errors: dict[str, str] | None = None,
    problem: str | None = None,
) -> str:
    try:
        rows = needing_attention()
    except SQLAlchemyError:
        log.warning("orders needing attention unavailable", exc_info=True)
        rows, problem = [], UNAVAILABLE
    return render_template(
        "admin_attention.html",
        rows=rows,
        actions=ACTIONS,
        failed_order=order_id,
        note=note,
        errors=errors or {},
        problem=problem,
        max_length=NOTE_LENGTH,
    )


def _invalid(fields: dict[str, str]) -> tuple[Response, int]:
    return error_response(422, "invalid_fields", "some fields are invalid", fields)
