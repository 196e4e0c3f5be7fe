"""gunicorn's log lines written by a thread of the operating system's, off the gevent loop.

A gevent worker serves every page and every open tracking stream of its process on one loop. A
log line to a pipe (stdout under ``shoeshop up``, systemd's journal, a container runtime) is a
``write`` that blocks the whole process once the pipe's 64 KiB are full, until its reader catches
up: every page and stream of the process waits for the log's reader. With 10,000 streams, each
closing with an access log line, this was a fifth of a web process's busy time in the watchers
bench (docs/performance.md, *Live tracking for thousands*).

``move_off_loop`` puts the standard library's ``QueueHandler`` in front of each stream handler
gunicorn set on its loggers; a thread of gevent's native thread pool takes the lines from the queue
and writes them with those handlers, waiting on the pipe without holding the loop. A line is
formatted on the loop (its time is when it was logged) and written in order. Files keep their own
handler: a write to a file does not wait on a reader, and gunicorn's SIGUSR1 reopens only the file
handlers it finds.

The queue holds at most ``MAX_PENDING`` lines. When the reader stays behind beyond that, further
lines are dropped (the web keeps serving) and counted, and a line takes their place, written
before the next line kept (or as the worker stops): ``log lines dropped: N (the log's reader fell
behind)``. Lines still queued when the worker stops are written by ``stop_all`` (gunicorn's
``worker_exit``), within 5 s; a worker killed outright, or whose reader has stopped, loses what was
queued: a few milliseconds of lines while the reader keeps up, up to ``MAX_PENDING`` lines per
logger when it does not.

Only gunicorn's two loggers are moved. Other writers to stdout and stderr (the app's warnings
through Python's last-resort handler, the console span exporter) still write on the loop.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from typing import Any

from gevent import monkey

# About 7 MB of queued access-log records (measured with tracemalloc): seconds of a busy web
# process's access log.
MAX_PENDING = 10_000


class _BoundedQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that drops (and counts) lines beyond ``MAX_PENDING`` instead of growing."""

    def __init__(self, queue: Any, limit: int) -> None:
        super().__init__(queue)
        self._pending = queue
        self.limit = limit
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        if self._pending.qsize() >= self.limit:
            self.dropped += 1
            return
        self.tell_dropped(record.name)
        self.queue.put_nowait(record)

    def tell_dropped(self, name: str) -> None:
        """A line where the dropped ones would have been, saying how many."""
        if self.dropped:
            self.queue.put_nowait(_drop_notice(name, time.time(), self.dropped))
            self.dropped = 0


class OffLoopLog:
    """One logger's stream handlers, moved behind a queue that a native thread empties."""

    def __init__(self, logger: logging.Logger, handlers: list[logging.Handler], limit: int) -> None:
        self._queue = monkey.get_original("queue", "SimpleQueue")()
        self.handler = _BoundedQueueHandler(self._queue, limit)
        self._logger = logger
        self._moved = handlers
        self._running: Any = None

    def start(self) -> None:
        import gevent

        for handler in self._moved:
            self._logger.removeHandler(handler)
        self._logger.addHandler(self.handler)
        # gevent's pool threads are the operating system's: a write that waits there releases
        # the loop (a thread of the patched threading module would be a greenlet on it).
        self._running = gevent.get_hub().threadpool.spawn(self._write_until_stopped)

    def stop(self, deadline: float) -> None:
        """Write what is queued, waiting until ``deadline`` (time.monotonic()), then give the
        logger its handlers back. A writer still blocked at the deadline (its reader stopped)
        keeps them: the process is exiting, and what is queued is lost."""
        if self._running is None:
            return
        self.handler.tell_dropped(self._logger.name)
        self._queue.put(None)
        # wait() returns at the deadline instead of raising gevent.Timeout (a BaseException,
        # which would escape gunicorn's worker_exit).
        self._running.wait(max(0.0, deadline - time.monotonic()))
        if not self._running.ready():
            return
        self._running = None
        self._logger.removeHandler(self.handler)
        for handler in self._moved:
            self._logger.addHandler(handler)

    def _write_until_stopped(self) -> None:
        while (record := self._queue.get()) is not None:
            try:
                self._write(record)
            except Exception:  # a filter or handler that raised: the next lines still go
                self.handler.handleError(record)

    def _write(self, record: logging.LogRecord) -> None:
        for handler in self._moved:
            if record.levelno >= handler.level:
                handler.handle(record)


def _drop_notice(name: str, created: float, count: int) -> logging.LogRecord:
    return logging.makeLogRecord(
        {
            "name": name,
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": f"log lines dropped: {count} (the log's reader fell behind)",
            "created": created,
            "msecs": (created % 1) * 1000,
        }
    )


def move_off_loop(loggers: list[logging.Logger], limit: int = MAX_PENDING) -> list[OffLoopLog]:
    """For each logger with stream handlers (not files): put them behind a queue written from a
    native thread, started now. Returns what ``stop_all`` takes; call it in the gevent worker
    after the fork (a thread does not survive one)."""
    moved = []
    for logger in loggers:
        streams: list[logging.Handler] = [
            h
            for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        ]
        if streams:
            off = OffLoopLog(logger, streams, limit)
            off.start()
            moved.append(off)
    return moved


def stop_all(moved: list[OffLoopLog], seconds: float = 5.0) -> None:
    """Stop each, within ``seconds`` for all together; never raises."""
    deadline = time.monotonic() + seconds
    for off in moved:
        off.stop(deadline)
