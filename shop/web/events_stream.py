"""The tracking page's live feed: the order view as Server-Sent Events, each time it changes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from shop import readmodel
from shop.validation import is_ascii_digits
from workers.messaging.database import engine_for

bp = Blueprint("events_stream", __name__)

# The read model changes when a worker commits; half a second feels live and costs one query.
POLL_INTERVAL_S = 0.5
# A comment line now and then keeps proxies from closing an idle stream, and shows a vanished
# client sooner: writing to its closed socket ends the stream.
HEARTBEAT_S = 10.0
# gunicorn's threaded workers give each open stream a thread; a stream ends after this long and
# the browser reconnects (with Last-Event-ID), so no thread is held for ever.
MAX_STREAM_S = 300.0
# Streams each process serves at once. gunicorn runs 2 workers x 4 threads: 2 streams each leave
# half the threads for pages and the API. A client turned away falls back to polling.
MAX_STREAMS_PER_PROCESS = 2
# How long the browser waits before reconnecting, in milliseconds (the SSE `retry:` field).
RECONNECT_MS = 2000
SLOTS = "shoeshop.sse_slots"


@dataclass(frozen=True)
class StreamLimits:
    poll_interval_s: float
    heartbeat_s: float
    max_stream_s: float

    @classmethod
    def of(cls, app: Flask) -> StreamLimits:
        """Tests shorten these through the app's config."""
        return cls(
            poll_interval_s=float(app.config.get("SSE_POLL_INTERVAL_S", POLL_INTERVAL_S)),
            heartbeat_s=float(app.config.get("SSE_HEARTBEAT_S", HEARTBEAT_S)),
            max_stream_s=float(app.config.get("SSE_MAX_STREAM_S", MAX_STREAM_S)),
        )


def load_view(order_id: str) -> dict[str, Any] | None:
    """The same view GET /api/orders/<id> answers with."""
    with engine_for("shop").connect() as conn:
        view = readmodel.order_view(conn, order_id)
    return view


def version_of(view: dict[str, Any]) -> int:
    """Grows with every event the shop heard about the order: each change adds a timeline entry."""
    return len(view["timeline"])


def is_final(view: dict[str, Any]) -> bool:
    return view["status"] in readmodel.FINAL


# A version is a count of the order's timeline entries: six digits are far more than any has.
MAX_VERSION_DIGITS = 6


def last_event_id() -> int | None:
    """The version the client already has: the header a reconnecting EventSource sends. Anything
    but one to six ASCII digits ("²", "٣", five thousand nines) is no version: the stream starts
    from the beginning, as for a new client."""
    raw = (request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "").strip()
    if not (is_ascii_digits(raw) and len(raw) <= MAX_VERSION_DIGITS):
        return None
    return int(raw)


@bp.get("/orders/<order_id:order_id>/events")
def order_events(order_id: str) -> Response:
    view = load_view(order_id)
    if view is None:
        return Response("no such order\n", status=404, mimetype="text/plain")
    seen = last_event_id()
    if is_final(view) and seen is not None and seen >= version_of(view):
        # The client has the final state: 204 tells EventSource to stop reconnecting.
        return Response(status=204)
    slots: threading.BoundedSemaphore = current_app.extensions[SLOTS]
    if not slots.acquire(blocking=False):
        busy = Response("too many live streams, poll instead\n", 503, mimetype="text/plain")
        busy.headers["Retry-After"] = "30"
        return busy
    limits = StreamLimits.of(current_app)
    response = Response(
        stream(order_id, view, seen, limits, load_view),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(slots.release)
    return response


def stream(
    order_id: str,
    first: dict[str, Any],
    seen: int | None,
    limits: StreamLimits,
    load: Callable[[str], dict[str, Any] | None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """Yield an `order` event at each change, until the order is final or the stream is old."""
    started = last_write = clock()
    yield f"retry: {RECONNECT_MS}\n\n"
    view: dict[str, Any] | None = first
    sent: dict[str, Any] | None = None
    if seen is not None and seen >= version_of(first):
        sent = first  # the client is up to date: resume without repeating it
    while view is not None:
        if view != sent:
            yield frame(view)
            sent, last_write = view, clock()
            if is_final(view):
                return
        if clock() - started >= limits.max_stream_s:
            return  # the browser reconnects with the last id it saw
        if clock() - last_write >= limits.heartbeat_s:
            yield ": heartbeat\n\n"
            last_write = clock()
        sleep(limits.poll_interval_s)
        view = load(order_id)


def frame(view: dict[str, Any]) -> str:
    data = json.dumps(view, separators=(",", ":"))
    return f"id: {version_of(view)}\nevent: order\ndata: {data}\n\n"


def init_app(app: Flask) -> None:
    limit = int(app.config.get("SSE_MAX_STREAMS", MAX_STREAMS_PER_PROCESS))
    app.extensions[SLOTS] = threading.BoundedSemaphore(limit)
    app.register_blueprint(bp)
