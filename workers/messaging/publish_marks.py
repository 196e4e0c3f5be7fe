"""Marking outbox rows published in batches, off the path that handles each message.

After a unit of work commits and its events reach the broker, the rows only need a note that
they went out, so the relay does not send them again. Writing that note in a transaction of its
own per message doubled the write transactions of every worker and of every checkout (on SQLite
they queue for one write lock). Here the notes collect in memory and a daemon thread writes them
a batch at a time.

A note lost with its process (a crash before the flush) costs one duplicate: the relay sends the
row again after its grace period, and the subscribers' inboxes apply it once. Nothing is lost.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable

from workers.messaging.database import transaction
from workers.messaging.outbox import mark_published

log = logging.getLogger(__name__)

# Well inside the relay's grace period (2 s), so the relay does not resend what went out.
FLUSH_INTERVAL_S = 0.1
BATCH = 500  # ids per UPDATE, far below SQLite's limit on bound parameters


class PublishedMarks:
    """Outbox ids per component that reached the broker and still need their row marked."""

    def __init__(self, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._pending: dict[str, list[str]] = defaultdict(list)
        self._wake = threading.Condition()
        self._owner_pid: int | None = None  # the process whose thread flushes (not a fork's)

    def add(self, component: str, event_ids: Iterable[str]) -> None:
        with self._wake:
            self._pending[component].extend(event_ids)
            self._ensure_flusher()
            self._wake.notify()

    def flush(self) -> int:
        """Mark everything noted so far; returns how many rows were marked."""
        with self._wake:
            batches, self._pending = self._pending, defaultdict(list)
        marked = 0
        for component, ids in batches.items():
            try:
                with transaction(component) as conn:
                    for start in range(0, len(ids), BATCH):
                        mark_published(conn, ids[start : start + BATCH])
            except Exception as exc:  # the database is away: so is every writer of the outbox
                log.warning(
                    "marking %d %s outbox row(s) published failed, the relay will send them "
                    "again (their subscribers apply them once): %s",
                    len(ids),
                    component,
                    exc,
                )
                continue
            marked += len(ids)
        return marked

    def _ensure_flusher(self) -> None:
        # A forked child (gunicorn, prefork) inherits the lock and the ids but not the thread.
        if self._owner_pid == os.getpid():
            return
        self._owner_pid = os.getpid()
        threading.Thread(target=self._run, name="outbox-marks", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
            # Let the batch grow: one transaction marks every message handled meanwhile.
            time.sleep(self._interval_s)
            self.flush()


marks = PublishedMarks()
"""The process's one set of marks; `publish_committed` adds to it."""
