"""A worker's consumer watchdog: a consumer that stays connected and takes nothing heals itself.

A broker connection can go silent without closing: a NAT or firewall that forgot the flow, a
half-open TCP connection after a network fault, a broker node that hangs. The worker then waits
for messages that never come while they pile up in its queue, and nothing fails, so nothing
restarts it. kombu notices some of this itself: on Redis it drops a BRPOP connection whose reply
is overdue by its ``health_check_interval`` (about 51 s by default); on RabbitMQ the heartbeat
notices a dead peer after two missed beats (Celery's ``broker_heartbeat``, 120 s).

This watchdog notices it from the outside, the same way on both brokers. Every ``CHECK_S``
seconds (more often for a window under half a minute) a thread of the worker asks the broker,
on a connection of its own, how many messages wait ready in the worker's queues; it counts the
messages the worker received (Celery's ``task_received``) and its free slots (fewer reserved
requests than its concurrency). When messages have waited ready for a whole
``SHOESHOP_WATCHDOG_WINDOW`` while the worker received none and had slots free, it shuts its
consumer connection's sockets down: the consumer's next read fails and Celery reconnects, as
after any lost connection (the unacknowledged messages go back to the queue: at least once, and
the inboxes keep the effects once). When a whole window passes again with nothing received, the
worker exits with ``EXIT_STALLED`` (75, EX_TEMPFAIL) for its supervisor to start it again:
``shoeshop up`` does (``workers.supervise``), systemd does with ``RestartForceExitStatus=75``.

It runs in ``celery worker`` processes only (``enable``, called from ``celeryd_init``), not in a
worker a test runs inside its own process. ``SHOESHOP_WATCHDOG_WINDOW=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.signals import task_received, worker_ready, worker_shutdown
from celery.worker import state as worker_state

from config.settings import get_settings

log = logging.getLogger(__name__)

# How often the watchdog looks, in seconds, at most: six looks a window at least (a short
# window, as the tests use, is looked at more often).
CHECK_S = 5.0
EXIT_STALLED = os.EX_TEMPFAIL  # 75

RECONNECT = "reconnect"
EXIT = "exit"

_enabled = threading.Event()
_received = itertools.count()
_last_received = [0]


@dataclass
class Watch:
    """What the watchdog concludes from its looks, kept apart from the broker and the clock.

    ``observe`` takes one look: ``now`` (monotonic seconds), ``ready`` (messages waiting in the
    worker's queues; None when the broker did not say), ``received`` (messages received so far,
    a running count) and ``free`` (the worker had a slot free). It returns RECONNECT when
    messages have waited a whole ``window_s`` while none was received and a slot was free, EXIT
    when that happens again with nothing received since the reconnection, else None."""

    window_s: float
    quiet_since: float | None = None
    last_received: int = 0
    reconnected: bool = False

    def observe(self, now: float, ready: int | None, received: int, free: bool) -> str | None:
        took = received != self.last_received
        self.last_received = received
        if took:
            self.reconnected = False  # it takes messages again: any later stall is a new one
        if took or not ready or not free:
            self.quiet_since = None
            return None
        if self.quiet_since is None:
            self.quiet_since = now
            return None
        if now - self.quiet_since < self.window_s:
            return None
        self.quiet_since = now
        if self.reconnected:
            return EXIT
        self.reconnected = True
        return RECONNECT


@dataclass
class Watchdog:
    """The thread that looks; ``ready_messages`` and ``reconnect`` and ``exit`` are the world."""

    watch: Watch
    ready_messages: Callable[[], int | None]
    free_slots: Callable[[], bool]
    reconnect: Callable[[], None]
    exit: Callable[[], None]
    check_s: float = CHECK_S
    clock: Callable[[], float] = time.monotonic
    stop: threading.Event = field(default_factory=threading.Event)

    def look(self) -> str | None:
        verdict = self.watch.observe(
            self.clock(), self.ready_messages(), _received_so_far(), self.free_slots()
        )
        if verdict == RECONNECT:
            log.error(
                "watchdog: messages waited ready in this worker's queues for %.0fs while it "
                "received none with slots free: reconnecting its consumer",
                self.watch.window_s,
            )
            self.reconnect()
        elif verdict == EXIT:
            log.critical(
                "watchdog: still nothing received %.0fs after reconnecting: exiting with %d "
                "for the supervisor to start this worker again",
                self.watch.window_s,
                EXIT_STALLED,
            )
            self.exit()
        return verdict

    def run(self) -> None:
        while not self.stop.wait(self.check_s):
            try:
                self.look()
            except Exception:  # a look that fails is no verdict; the next one tries again
                log.exception("watchdog: a look failed")


def enable(**_: Any) -> None:
    """celeryd_init: this process is a ``celery worker``; its watchdog starts once it is ready."""
    _enabled.set()


def wire() -> None:
    """Connect the watchdog to Celery's signals (config.celery.wire_celery_process)."""
    from celery.signals import celeryd_init

    celeryd_init.connect(enable, weak=False, dispatch_uid="shoeshop.watchdog.enable")
    task_received.connect(_count_received, weak=False, dispatch_uid="shoeshop.watchdog.received")
    worker_ready.connect(_start, weak=False, dispatch_uid="shoeshop.watchdog.start")
    worker_shutdown.connect(_stop, weak=False, dispatch_uid="shoeshop.watchdog.stop")


_running: list[Watchdog] = []


def _count_received(**_: Any) -> None:
    _last_received[0] = next(_received) + 1


def _received_so_far() -> int:
    return _last_received[0]


def _start(sender: Any = None, **_: Any) -> None:
    window = get_settings().watchdog_window_s
    if not _enabled.is_set() or window == 0 or _running or sender is None:
        return
    consumer = sender
    app: Celery = consumer.app
    concurrency = int(consumer.controller.concurrency)
    dog = Watchdog(
        watch=Watch(window_s=window),
        # The queues it consumes now: an operator's cancel_consumer takes one out of the watch.
        ready_messages=lambda: ready_messages(app, sorted(app.amqp.queues.consume_from)),
        free_slots=lambda: len(worker_state.reserved_requests) < concurrency,
        reconnect=lambda: shut_down(broker_sockets(consumer)),
        exit=_exit_for_supervisor,
        check_s=min(CHECK_S, window / 6),
    )
    _running.append(dog)
    threading.Thread(target=dog.run, name="shoeshop-watchdog", daemon=True).start()
    queues = ", ".join(sorted(app.amqp.queues.consume_from))
    log.info("watchdog: watching %s every %gs, window %ds", queues, dog.check_s, window)


def _stop(**_: Any) -> None:
    for dog in _running:
        dog.stop.set()


def _exit_for_supervisor() -> None:
    # No warm shutdown: it would wait on the silent connection. The messages this worker holds
    # unacknowledged go back to their queue (RabbitMQ when the connection closes, Redis after
    # its visibility timeout).
    logging.shutdown()
    os._exit(EXIT_STALLED)


def ready_messages(app: Celery, queues: Sequence[str]) -> int | None:
    """Messages waiting ready in ``queues`` (not those taken and unacknowledged), on a
    connection of the watchdog's own; None when the broker does not answer within a few
    seconds (no verdict then: a broker away is the consumer's own to reconnect to), or when
    there is no queue to ask about."""
    if not queues:
        return None
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
            channel = conn.default_channel
            if conn.transport.driver_type == "redis":
                return sum(int(channel.client.llen(name)) for name in queues)
            return sum(
                int(channel.queue_declare(queue=name, passive=True).message_count)
                for name in queues
            )
    except Exception as exc:
        log.warning("watchdog: the broker did not say how many messages wait: %s", exc)
        return None


def broker_sockets(consumer: Any) -> list[socket.socket]:
    """The sockets of every broker connection of the worker: its consumer's, its event
    dispatcher's (the worker's heartbeat is sent on it from the consumer's loop) and those of
    the app's connection pool, which its producers and remote control publish on (the first
    thing a reconnected consumer does is a remote-control hello: on a silent pooled connection
    it would wait for ever for RabbitMQ's confirm)."""
    dispatcher = getattr(consumer, "event_dispatcher", None)
    connections = [consumer.connection, getattr(dispatcher, "connection", None)]
    pool = getattr(consumer.app, "_pool", None)  # only once something used app.pool
    if pool is not None:
        connections += [*list(pool._resource.queue), *list(pool._dirty)]
    found: list[socket.socket] = []
    for conn in connections:
        for sock in consumer_sockets(conn) if conn is not None else ():
            if sock not in found:
                found.append(sock)
    return found


def consumer_sockets(connection: Any) -> list[socket.socket]:
    """The sockets under a consumer's kombu connection: py-amqp's one, or every socket of each
    kombu Redis channel's connection pool (its BRPOP connection among them)."""
    found: list[socket.socket] = []
    # py-amqp's Connection, or kombu's Transport; None when not connected (the ``connection``
    # property would connect).
    raw = getattr(connection, "_connection", None)
    amqp_sock = getattr(getattr(raw, "transport", None), "sock", None)
    if isinstance(amqp_sock, socket.socket):
        found.append(amqp_sock)
    for channel in getattr(raw, "channels", None) or ():
        connections = [getattr(channel, "_in_poll", None)]  # the BRPOP connection
        for pool in (getattr(channel, "_pool", None), getattr(channel, "_async_pool", None)):
            connections += _pooled(pool)
        for conn in connections:
            sock = getattr(conn, "_sock", None)
            if isinstance(sock, socket.socket) and sock not in found:
                found.append(sock)
    return found


def _pooled(pool: Any) -> list[Any]:
    if pool is None:
        return []
    return [*pool._get_free_connections(), *pool._get_in_use_connections()]


def shut_down(sockets: Iterable[socket.socket]) -> None:
    """Shut each socket down for reading and writing, from any thread: a reader blocked on it,
    or the event loop polling it, wakes to an end of stream, and the connection's owner
    reconnects. The file descriptors stay the owner's to close."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
