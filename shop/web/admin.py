"""The operators' pages and JSON: dead letters, outbox backlogs, queue depths, an order's saga
across every component, a customer's erasure (its views in ``shop.web.admin_erasure``); password
only.

The one module of the shop that imports the operations component (workers.operations), whose
data these pages show; the import contracts in pyproject.toml allow no other. For the same reason
it is here that the operations' metrics (every outbox's backlog, the dead letters) are added to
the shop's /metrics (``add_metric_sources``, called by the app factory).

Nothing an operator puts in a URL reaches a database unchecked: a dead letter's id is matched by
the ``dead_letter_id`` converter and an order's by ``order_id`` (a lower-case UUID, anything else
a 404 before any view runs), and the list's filters (queue, status, since) are read by
``dlq.read_filters``, which refuses what the store does not hold with a 422 naming each such
parameter: in the API's error shape under /api, in a sentence on the page. A database that does
not answer the saga view is a 503: in the error shape under /api, in a sentence on the page.
"""

from __future__ import annotations

import hmac
import logging

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from config.celery import app as celery_app
from config.settings import QUEUES, get_settings
from shop import throughput
from shop.web import admin_attention, admin_erasure, admin_mail, metrics
from shop.web.errors import error_response
from workers.messaging.database import engine_for
from workers.messaging.envelope import utcnow
from workers.operations import dlq, saga
from workers.operations import metrics as operations_metrics
from workers.operations.dlq import DeadLetterNotFound, Filters, InvalidFilters
from workers.operations.relay import backlogs

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")
api_bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")
admin_attention.add_routes(bp, api_bp)
admin_erasure.add_routes(bp, api_bp)
admin_mail.add_routes(bp, api_bp)

REALM = 'Basic realm="Shoeshop admin", charset="UTF-8"'
FLOWER_PORT = 5555
SAGA_UNAVAILABLE = (
    "A component's database did not answer, so the saga cannot be shown. Try again shortly."
)
NOT_AN_ORDER_ID = "An order's id is a UUID of 36 characters, as in the address of its page."


def add_metric_sources(app: Flask) -> None:
    """Report the operations' readers at the app's /metrics, as the sources ``outbox`` (every
    component's outbox backlog), ``dead_letters`` (parked per queue), ``subscribers`` (how
    far each queue's subscribers are behind) and ``deadlines`` (orders their timer has left
    past their deadline)."""
    metrics.add_source(app, "outbox", operations_metrics.outbox_metrics)
    metrics.add_source(app, "dead_letters", operations_metrics.dead_letter_metrics)
    metrics.add_source(app, "subscribers", operations_metrics.subscriber_metrics)
    metrics.add_source(app, "deadlines", operations_metrics.deadline_metrics)


def _authorised() -> bool:
    auth = request.authorization
    given = (auth.password or "") if auth is not None else ""
    # Constant time: how long a wrong guess takes says nothing about the right one.
    return hmac.compare_digest(given.encode(), get_settings().admin_password.encode())


@bp.before_request
def _page_guard() -> ResponseReturnValue | None:
    if _authorised():
        return None
    return Response("The admin pages need the admin password.", 401, {"WWW-Authenticate": REALM})


@api_bp.before_request
def _api_guard() -> ResponseReturnValue | None:
    if not _authorised():
        response, status = error_response(401, "unauthorized", "the admin password is required")
        response.headers["WWW-Authenticate"] = REALM
        return response, status
    # A browser resends basic-auth credentials to any site's form; only a JSON body (which a
    # cross-site form cannot send without CORS) proves the caller meant it. Hence no CSRF token.
    if request.method == "POST" and not request.is_json:
        return error_response(415, "unsupported_media_type", "send Content-Type: application/json")
    return None


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each component queue; None where the broker would not say."""
    depths: dict[str, int | None] = {}
    with celery_app.connection_for_read() as conn:
        for name in QUEUES:
            try:
                channel = conn.channel()
                try:
                    if conn.transport.driver_type == "redis":
                        depths[name] = int(channel.client.llen(name))
                    else:
                        depths[name] = int(channel.queue_declare(queue=name, passive=True)[1])
                finally:
                    channel.close()
            except Exception as exc:  # broker away or queue not declared yet: show, don't fail
                log.warning("queue depth of %s unavailable: %s", name, exc)
                depths[name] = None
    return depths


@bp.get("")
def dashboard() -> ResponseReturnValue:
    host = (request.host or "localhost").rsplit(":", 1)[0]
    return render_template(
        "admin.html",
        parked=dlq.count_parked(),
        backlogs=backlogs(),
        depths=queue_depths(),
        lags={lag.queue: lag for lag in operations_metrics.subscriber_lags()},
        stall_after_s=get_settings().stall_after_s,
        redeliver_after_s=get_settings().redeliver_after_s,
        minutes=_throughput(),
        flower_url=f"{request.scheme}://{host}:{FLOWER_PORT}",
    )


def _throughput() -> list[throughput.Minute]:
    with engine_for("shop").connect() as conn:
        return throughput.recent(conn, utcnow())


def _filters() -> Filters:
    """The list's filters from the query string; raises dlq.InvalidFilters."""
    return dlq.read_filters(
        queue=request.args.get("queue"),
        status=request.args.get("status"),
        since=request.args.get("since"),
        now=utcnow(),
    )


@bp.get("/dead-letters")
def dead_letters_page() -> ResponseReturnValue:
    try:
        filters = _filters()
    except InvalidFilters as exc:
        sentences = [f"The {name} filter {message}." for name, message in exc.fields.items()]
        return render_template("admin_bad_filters.html", sentences=sentences), 422
    letters = dlq.list_letters(queue=filters.queue, since=filters.since, status=filters.status)
    return render_template(
        "admin_dead_letters.html",
        letters=letters,
        status=filters.status or dlq.ALL,
        queue=filters.queue,
        queues=dlq.QUEUE_NAMES,
        statuses=dlq.ALL_STATUSES,
    )


@bp.get("/dead-letters/<dead_letter_id:letter_id>")
def dead_letter_page(letter_id: str) -> ResponseReturnValue:
    try:
        letter = dlq.get(letter_id)
    except DeadLetterNotFound:
        return render_template("404.html", message="No dead letter has that id."), 404
    return render_template(
        "admin_dead_letter.html",
        letter=letter,
        actions=dlq.actions(letter_id),
        saga_order_id=_order_of(letter.subject),
    )


def _order_of(subject: str | None) -> str | None:
    """The order a letter is about, if its subject is an order's id: a subject is whatever the
    parked message said (nothing at all for a body that was no event)."""
    return subject if subject is not None and saga.is_order_id(subject) else None


@bp.post("/dead-letters/<dead_letter_id:letter_id>/<any(replay, discard):action>")
def act_on_letter(letter_id: str, action: str) -> ResponseReturnValue:
    try:
        done = dlq.replay(celery_app, letter_id) if action == "replay" else dlq.discard(letter_id)
    except DeadLetterNotFound:
        return render_template("404.html", message="No dead letter has that id."), 404
    flash(f"{action}: {done.outcome}", "ok" if done.ok else "error")
    return redirect(url_for("admin.dead_letter_page", letter_id=letter_id), code=303)


@bp.get("/orders")
def find_saga_page() -> ResponseReturnValue:
    """The dashboard's look-up form: an order's id (pasted, so spaces and capitals are forgiven)."""
    order_id = request.args.get("order_id", "").strip().lower()
    if not saga.is_order_id(order_id):
        return render_template("admin_saga.html", order_id=None, problem=NOT_AN_ORDER_ID), 422
    return redirect(url_for("admin.saga_page", order_id=order_id), code=303)


def _saga_of(order_id: str) -> list[saga.SagaEvent] | None:
    """The order's saga, or None when a component's database did not answer (logged)."""
    try:
        return saga.timeline(order_id)
    except SQLAlchemyError:
        log.warning("saga of order %s unavailable", order_id, exc_info=True)
        return None


@bp.get("/orders/<order_id:order_id>")
def saga_page(order_id: str) -> ResponseReturnValue:
    timeline = _saga_of(order_id)
    if timeline is None:
        page = render_template("admin_saga.html", order_id=order_id, problem=SAGA_UNAVAILABLE)
        return page, 503
    # No component has an event about it: the page says so, with the API's status.
    status = 200 if timeline else 404
    return render_template("admin_saga.html", order_id=order_id, timeline=timeline), status


@api_bp.get("/orders/<order_id:order_id>/saga")
def saga_json(order_id: str) -> ResponseReturnValue:
    timeline = _saga_of(order_id)
    if timeline is None:
        message = "a component's database did not answer; try again shortly"
        return error_response(503, "database_unavailable", message)
    if not timeline:
        return error_response(404, "not_found", f"no component has an event about {order_id}")
    return jsonify({"order_id": order_id, "timeline": timeline})


@api_bp.get("/dead-letters")
def list_json() -> ResponseReturnValue:
    try:
        filters = _filters()
    except InvalidFilters as exc:
        return _invalid(exc.fields)
    letters = dlq.list_letters(queue=filters.queue, since=filters.since, status=filters.status)
    return jsonify([letter.to_dict() for letter in letters])


@api_bp.get("/dead-letters/<dead_letter_id:letter_id>")
def show_json(letter_id: str) -> ResponseReturnValue:
    try:
        letter = dlq.get(letter_id)
    except DeadLetterNotFound:
        return _not_found(letter_id)
    history = [action.to_dict() for action in dlq.actions(letter_id)]
    return jsonify({**letter.to_dict(), "actions": history})


@api_bp.post("/dead-letters/<dead_letter_id:letter_id>/replay")
def replay_json(letter_id: str) -> ResponseReturnValue:
    try:
        done = dlq.replay(celery_app, letter_id)
    except DeadLetterNotFound:
        return _not_found(letter_id)
    if not done.ok:
        return error_response(409, "replay_failed", done.outcome)
    return jsonify(done.to_dict()), 202


@api_bp.post("/dead-letters/<dead_letter_id:letter_id>/discard")
def discard_json(letter_id: str) -> ResponseReturnValue:
    try:
        done = dlq.discard(letter_id)
    except DeadLetterNotFound:
        return _not_found(letter_id)
    return jsonify(done.to_dict())


def _not_found(letter_id: str) -> tuple[Response, int]:
    return error_response(404, "not_found", f"no dead letter has the id {letter_id}")


def _invalid(fields: dict[str, str]) -> tuple[Response, int]:
    return error_response(422, "invalid_fields", "some parameters are invalid", fields)
