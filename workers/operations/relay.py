"""The outbox relay: publishes every committed event that has not reached the broker yet.

It sweeps the outbox of every emitting component (the ``shoeshop relay`` process, which also
runs the redelivery sweep and, on RabbitMQ, the broker drain as chores of its loop). Each pass
touches a heartbeat file when it is given one (SHOESHOP_HEARTBEAT_FILE), so the supervisor that
set it (``shoeshop supervise --heartbeat``, workers.supervise) can tell a relay that hangs from
one that works, kill it and start it afresh.

Several relays may run at once, against the same databases and broker: on PostgreSQL each takes
the rows no other holds (``FOR UPDATE SKIP LOCKED``), on SQLite their write transactions take
turns, and an event published twice anyway is applied once (every consumer has an inbox).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path

from celery import Celery

from config.settings import get_settings
from workers.messaging import tracing
from workers.messaging.database import engine_for, transaction
from workers.messaging.outbox import EMITTING_COMPONENTS, backlog, mark_published, unpublished
from workers.messaging.publisher import publish

log = logging.getLogger(__name__)

# The writer publishes right after its commit; the relay leaves it this long to do so, which
# keeps the two from sending the same event twice in the common case (twice is still harmless).
GRACE = timedelta(seconds=2)
BATCH = 200
# Between sweeps when nothing was pending: the worst added delay for an event whose
# inline publish failed, against the cost of polling four databases.
IDLE_INTERVAL_S = 0.5
# While the broker is away: long enough not to spin, short enough to resume quickly.
FAILURE_INTERVAL_S = 2.0
RELAY_RETRY_POLICY = {"max_retries": 0}


def relay_once(app: Celery, component: str, *, grace: timedelta = GRACE) -> int:
    """Publish one batch (at most BATCH) of a component's events written more than ``grace`` ago
    and not yet published; returns how many went out. Raises what the publisher raises when the
    broker is away (the rows then stay unpublished) and sqlalchemy.exc.SQLAlchemyError."""
    # Looked for first without the write lock: most passes find nothing, and then take no
    # SQLite write turn from the component's own writers. A relay stopped between two passes
    # (SIGSTOP, a hang) then holds no lock a checkout would wait behind.
    with engine_for(component).connect() as conn:
        if not unpublished(conn, limit=1, older_than=grace):
            return 0
    with transaction(component) as conn:
        events = unpublished(conn, limit=BATCH, older_than=grace)
        if not events:
            return 0
        publish(app, events, retry_policy=RELAY_RETRY_POLICY)
        mark_published(conn, [event.id for event in events])
    log.info("relayed %d event(s) from %s", len(events), component)
    return len(events)


def run(
    app: Celery,
    stop: threading.Event,
    components: Iterable[str] = EMITTING_COMPONENTS,
    *,
    grace: timedelta = GRACE,
    chores: Sequence[Callable[[], int]] = (),
    heartbeat: Path | None = None,
) -> None:
    """Sweep every component's outbox until ``stop`` is set; run ``chores`` (each returning how
    much it did) on every sweep. Never raises: a failed sweep is logged and tried again after
    FAILURE_INTERVAL_S seconds; an idle one waits IDLE_INTERVAL_S seconds.

    ``heartbeat`` (default: SHOESHOP_HEARTBEAT_FILE, none when unset) is touched as each pass
    begins, a pass that will fail included: a broker or database away is seen on the metrics,
    and starting the relay again would not bring it back. Only a pass that never comes back
    leaves the file alone."""
    names = tuple(components)
    beat = _Heartbeat(heartbeat if heartbeat is not None else get_settings().heartbeat_file)
    # The relay re-sends stored events whose traceparent it never touches; its own spans are
    # those of a message.parked or a redelivery's database work inside a trace (none when off).
    tracing.setup("relay")
    try:
        while not stop.is_set():
            beat()
            try:
                sent = sum(relay_once(app, name, grace=grace) for name in names)
                sent += sum(chore() for chore in chores)
            except Exception as exc:  # broker or database away: keep trying, never exit
                log.warning("relay sweep failed, retrying in %.0fs: %s", FAILURE_INTERVAL_S, exc)
                stop.wait(FAILURE_INTERVAL_S)
                continue
            if sent == 0:
                stop.wait(IDLE_INTERVAL_S)
    finally:
        tracing.shutdown()  # the stop path (SIGTERM, Ctrl-C): export what is buffered


class _Heartbeat:
    """Touches its file (None: does nothing). A file it cannot touch is logged once, until it
    can again: the supervisor watching it will kill this relay anyway, and says why."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._failing = False

    def __call__(self) -> None:
        if self.path is None:
            return
        try:
            self.path.touch()
        except OSError as exc:
            if not self._failing:
                log.error("relay: cannot touch its heartbeat file %s: %s", self.path, exc)
            self._failing = True
            return
        self._failing = False


def every(interval_s: float, chore: Callable[[], int]) -> Callable[[], int]:
    """``chore``, run at most once per ``interval_s`` seconds; in between, it reports 0 done."""
    last = [float("-inf")]

    def throttled() -> int:
        now = time.monotonic()
        if now - last[0] < interval_s:
            return 0
        last[0] = now
        return chore()

    return throttled


def backlogs(components: Iterable[str] = EMITTING_COMPONENTS) -> dict[str, int]:
    """Events written but not yet published, per component (its name → a count); raises
    sqlalchemy.exc.SQLAlchemyError when a database is away."""
    result = {}
    for component in components:
        with engine_for(component).connect() as conn:
            result[component] = backlog(conn)
    return result
