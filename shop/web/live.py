"""One subscription per web process to the live order views (shop.live), fanned out in memory.

``Hub.watch(order_id)`` gives a stream its own queue; the subscriber (a thread, a greenlet under
gunicorn's gevent workers) puts each notice about that order on the queues of the order's open
streams. No stream reads the database for a notice: the view travels in it.

Nothing is missed: when the subscription is lost (a broker restart, a network blip) the hub
reconnects with a growing pause, and once subscribed again puts ``RESYNC`` on every queue, so each
open stream reads its order once and carries on from there; a notice sent while it was away is
thus never needed. The subscriber starts with the first stream of the process (after gunicorn's
fork, never before), and its first subscription resyncs too. A stream registers before it reads
its order, so a change is either in that read or in a notice (or a resync) after it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu.entity import Queue
from kombu.message import Message

from shop.live import EXCHANGE

log = logging.getLogger(__name__)

# Reconnect pauses: a broker back within seconds is found within a second or two.
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 10.0
# A stream opening within this long of its order's last read or notice starts from that view
# (many pages opening one order read it once). Short: a change no notice announced (an erasure
# rewriting the name) reaches a new stream within it.
VIEW_REUSE_S = 2.0
# How long one wait for the broker lasts before the loop checks heartbeats and whether to stop.
DRAIN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Notice:
    """An order's view as the shop committed it, and when (seconds since the epoch); ``data``
    is the view as JSON, written once for every stream of the order."""

    view: dict[str, Any]
    committed_at: float
    data: str | None = None


class _Resync:
    """Read the order again: notices may have been missed while the subscription was away."""


RESYNC = _Resync()
Item = Notice | _Resync


class Hub:
    """The process's live subscription and the streams it feeds."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._watchers: dict[str, set[queue.Queue[Item]]] = defaultdict(set)
        # The latest view of each watched order (from a stream's read or a notice) and when it
        # came (time.monotonic()): the next stream of the order within VIEW_REUSE_S starts from
        # it instead of reading. Kept only while the order has streams, dropped on a reconnect.
        self._views: dict[str, tuple[dict[str, Any], float]] = {}
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        # Times the subscription came up (1 at first; each reconnect adds one).
        self.subscriptions = 0
        self._stopping = threading.Event()
        # Its own queue per hub: every web process (on any host) gets every notice.
        self.queue_name = (
            f"shoeshop.live.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        )

    def watch(self, order_id: str) -> queue.Queue[Item]:
        """A queue that will hold the notices about this order; give it back with ``unwatch``."""
        self._start_once()
        waiter: queue.Queue[Item] = queue.Queue()
        with self._lock:
            self._watchers[order_id].add(waiter)
        return waiter

    def unwatch(self, order_id: str, waiter: queue.Queue[Item]) -> None:
        with self._lock:
            found = self._watchers.get(order_id)
            if found is not None:
                found.discard(waiter)
                if not found:
                    del self._watchers[order_id]
                    self._views.pop(order_id, None)

    def recent_view(self, order_id: str) -> dict[str, Any] | None:
        """The order's view as this process last had it, if that was under VIEW_REUSE_S ago
        and the subscription has been up since: what a newly opened stream may start from."""
        with self._lock:
            found = self._views.get(order_id)
        if found is None or time.monotonic() - found[1] > VIEW_REUSE_S:
            return None
        return found[0]

    def remember(self, order_id: str, view: dict[str, Any]) -> None:
        """A view a stream read: kept for the order's next streams, unless a newer one is."""
        with self._lock:
            if order_id in self._watchers and self._subscribed.is_set():
                self._keep(order_id, view)

    def _keep(self, order_id: str, view: dict[str, Any]) -> None:
        kept = self._views.get(order_id)
        if kept is None or len(view.get("timeline", ())) >= len(kept[0].get("timeline", ())):
            self._views[order_id] = (view, time.monotonic())

    def watching(self) -> int:
        """Open streams in this process."""
        with self._lock:
            return sum(len(waiters) for waiters in self._watchers.values())

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the subscription is up (tests, and the bench, wait for it)."""
        self._start_once()
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start_once(self) -> None:
        with self._lock:
            if self._thread is None or (
                not self._thread.is_alive() and not self._stopping.is_set()
            ):
                self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        pause = RECONNECT_FIRST_S
        first = True
        while not self._stopping.is_set():
            try:
                self._subscribe()
                first = False
                pause = RECONNECT_FIRST_S
            except Exception as exc:
                self._subscribed.clear()
                with self._lock:
                    self._views.clear()
                if not first or pause > RECONNECT_FIRST_S:
                    log.warning("live updates: subscription lost, again in %.1fs: %s", pause, exc)
                first = False
                self._stopping.wait(pause)
                pause = min(pause * 2, RECONNECT_MAX_S)

    def _subscribe(self) -> None:
        # auto_delete: the queue goes with the process's connection (RabbitMQ); on Redis a fanout
        # "queue" is a SUBSCRIBE on the exchange's channel and holds nothing.
        bound = Queue(  # type: ignore[no-untyped-call]
            self.queue_name,
            exchange=EXCHANGE,
            routing_key="",
            durable=False,
            auto_delete=True,
            exclusive=True,
        )
        with self._app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            with conn.Consumer([bound], callbacks=[self._deliver], accept=["json"], no_ack=True):
                # On Redis the SUBSCRIBE goes out with the first wait: only after it are notices
                # heard. Then every open stream reads its order once: a stream opened before the
                # subscription was up (or while it was away) may have missed one.
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.1)
                self.subscriptions += 1
                self._subscribed.set()
                self._resync_all()
                while not self._stopping.is_set():
                    try:
                        conn.drain_events(timeout=DRAIN_TIMEOUT_S)
                    except TimeoutError:
                        conn.heartbeat_check()

    def _deliver(self, body: Any, _message: Message) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("view"), dict):
            log.warning("live updates: a notice that is no view was ignored")
            return
        view = body["view"]
        committed_at = float(body.get("committed_at") or time.time())
        notice = Notice(view, committed_at, json.dumps(view, separators=(",", ":")))
        order_id = str(body.get("order_id"))
        with self._lock:
            waiters = list(self._watchers.get(order_id, ()))
            if waiters:
                self._keep(order_id, view)
        for waiter in waiters:
            waiter.put(notice)

    def _resync_all(self) -> None:
        with self._lock:
            self._views.clear()
            waiters = [w for found in self._watchers.values() for w in found]
        for waiter in waiters:
            waiter.put(RESYNC)
