"""The tracking page's live feed: the order view as Server-Sent Events, each time it changes.

A stream reads its order once when it opens, then is pushed each change (shop.web.live: one
subscription per process, the view in each notice), so an open page costs no query while nothing
happens. gunicorn's gevent workers (shop.web.gunicorn_conf) hold thousands of such idle streams
per process; each stream holds a greenlet, not a thread.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from config.celery import app as celery_app
from shop import readmodel
from shop.validation import is_ascii_digits
from shop.web.live import RESYNC, Hub, Item, Notice
from workers.messaging.database import engine_for

bp = Blueprint("events_stream", __name__)

# A comment line now and then keeps proxies from closing an idle stream, and shows a vanished
# client sooner: writing to its closed socket ends the stream.
HEARTBEAT_S = 15.0
# A stream ends after this long and the browser reconnects (with Last-Event-ID, so nothing is
# sent twice) and reads the order afresh: a bound on anything a lost notice could hide.
MAX_STREAM_S = 300.0
# Streams each process serves at once; beyond it a client is turned away (503) and the page
# falls back to polling. Each idle stream costs a greenlet and its socket (docs/performance.md
# measures the memory per stream): 9,000 per process leave 1,000 of the Procfile's
# --worker-connections 10000 for pages, however unevenly the kernel spreads connections over the
# two workers.
MAX_STREAMS_PER_PROCESS = 9000
# How long the browser waits before reconnecting, in milliseconds (the SSE `retry:` field).
RECONNECT_MS = 2000
SLOTS = "shoeshop.sse_slots"
HUB = "shoeshop.live_hub"


@dataclass(frozen=True)
class StreamLimits:
    heartbeat_s: float
    max_stream_s: float

    @classmethod
    def of(cls, app: Flask) -> StreamLimits:
        """Tests shorten these through the app's config."""
        return cls(
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
    hub: Hub = current_app.extensions[HUB]
    # Watch first, then read: a change is in this read or in a notice after it. A view this
    # process had a moment ago serves as that read (many pages opening one order read it once).
    waiter = hub.watch(order_id)
    try:
        view = hub.recent_view(order_id)
        if view is None:
            view = load_view(order_id)
            if view is not None:
                hub.remember(order_id, view)
    except BaseException:
        hub.unwatch(order_id, waiter)
        raise
    seen = last_event_id()
    refusal = _refusal(view, seen)
    if refusal is not None:
        hub.unwatch(order_id, waiter)
        return refusal
    slots: threading.BoundedSemaphore = current_app.extensions[SLOTS]
    if not slots.acquire(blocking=False):
        hub.unwatch(order_id, waiter)
        busy = Response("too many live streams, poll instead\n", 503, mimetype="text/plain")
        busy.headers["Retry-After"] = "30"
        return busy
    assert view is not None
    limits = StreamLimits.of(current_app)
    response = Response(
        stream(order_id, view, seen, limits, load_view, waiter),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

    def close() -> None:
        hub.unwatch(order_id, waiter)
        slots.release()

    response.call_on_close(close)
    return response


def _refusal(view: dict[str, Any] | None, seen: int | None) -> Response | None:
    if view is None:
        return Response("no such order\n", status=404, mimetype="text/plain")
    if is_final(view) and seen is not None and seen >= version_of(view):
        # The client has the final state: 204 tells EventSource to stop reconnecting.
        return Response(status=204)
    return None


def stream(
    order_id: str,
    first: dict[str, Any],
    seen: int | None,
    limits: StreamLimits,
    load: Callable[[str], dict[str, Any] | None],
    waiter: queue.Queue[Item],
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """Yield an `order` event at each change, until the order is final or the stream is old.

    Changes arrive on ``waiter`` (shop.web.live): a notice with the view, or RESYNC, on which the
    order is read again. A view older than the one sent (a notice overtaken by a later one) is
    never sent: the version (timeline entries) only grows."""
    started = last_write = clock()
    yield f"retry: {RECONNECT_MS}\n\n"
    view: dict[str, Any] | None = first
    committed_at: float | None = None
    data: str | None = None
    sent: dict[str, Any] | None = None
    if seen is not None and seen >= version_of(first):
        sent = first  # the client is up to date: resume without repeating it
    while view is not None:
        if view != sent and (sent is None or version_of(view) >= version_of(sent)):
            yield frame(view, committed_at, data)
            sent, last_write = view, clock()
            if is_final(view):
                return
        left = limits.max_stream_s - (clock() - started)
        if left <= 0:
            return  # the browser reconnects with the last id it saw
        quiet = limits.heartbeat_s - (clock() - last_write)
        if quiet <= 0:
            yield ": heartbeat\n\n"
            last_write = clock()
            continue
        try:
            item = waiter.get(timeout=min(left, quiet))
        except queue.Empty:
            continue
        if isinstance(item, Notice):
            view, committed_at, data = item.view, item.committed_at, item.data
        elif item is RESYNC:
            view, committed_at, data = load(order_id), None, None


def frame(view: dict[str, Any], committed_at: float | None = None, data: str | None = None) -> str:
    """One `order` event (``data``: the view as JSON, when already written); a pushed change also
    carries, as a comment EventSource ignores, when the shop committed it (seconds since the
    epoch: the push delay the bench measures)."""
    data = data if data is not None else json.dumps(view, separators=(",", ":"))
    note = f": committed {committed_at:.6f}\n" if committed_at is not None else ""
    return f"{note}id: {version_of(view)}\nevent: order\ndata: {data}\n\n"


def init_app(app: Flask) -> None:
    limit = int(app.config.get("SSE_MAX_STREAMS", MAX_STREAMS_PER_PROCESS))
    app.extensions[SLOTS] = threading.BoundedSemaphore(limit)
    app.extensions[HUB] = Hub(celery_app)
    app.register_blueprint(bp)
