"""Log lines that carry the order id, event id and correlation id of the event being handled."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun, task_prerun

from workers.messaging.envelope import Envelope

FORMAT_ENV = "SHOESHOP_LOG_FORMAT"
IDS = ("order_id", "event_id", "correlation_id")
CONTEXT_KEYS = (*IDS, "task", "attempt")
# Attributes every LogRecord has; anything else on a record was put there as an extra.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# The ids of the event this thread (or task) is handling; None between events.
_handling: ContextVar[dict[str, Any] | None] = ContextVar("shoeshop_handling", default=None)


def _prefix(ids: MutableMapping[str, Any] | dict[str, Any]) -> str:
    return " ".join(f"{key}={ids[key]}" for key in CONTEXT_KEYS if key in ids)


class EventLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the event's ids and puts them in the record's extras."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[{_prefix(extra)}] {msg}", kwargs


def event_context(event: Envelope, task: str, attempt: int) -> dict[str, Any]:
    return {
        "order_id": event.subject,
        "event_id": event.id,
        "correlation_id": event.correlationid,
        "task": task,
        "attempt": attempt,
    }


def event_logger(logger: logging.Logger, event: Envelope, task: str, attempt: int) -> EventLogger:
    return EventLogger(logger, event_context(event, task, attempt))


@contextmanager
def handling(context: dict[str, Any]) -> Iterator[None]:
    """Every line logged inside, by any logger, carries these ids (see EventContextFilter)."""
    token = _handling.set(context)
    try:
        yield
    finally:
        _handling.reset(token)


class EventContextFilter(logging.Filter):
    """Gives a line written while an event is handled the ids of that event.

    Installed on handlers, so it sees lines from every logger: the kit's, SQLAlchemy's, Celery's.
    A line that came through an EventLogger already has them and is left alone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = _handling.get()
        if context is None or hasattr(record, "event_id"):
            return True
        for key in CONTEXT_KEYS:
            setattr(record, key, context.get(key))
        prefix = _prefix(context).replace("%", "%%") if record.args else _prefix(context)
        record.msg = f"[{prefix}] {record.msg}"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the event's ids and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
            "thread": record.threadName,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def json_requested() -> bool:
    return os.environ.get(FORMAT_ENV, "text").strip().lower() == "json"


def install(logger: logging.Logger, *, json_lines: bool | None = None) -> None:
    """Put the event ids on every line this logger's handlers write; JSON lines if asked."""
    use_json = json_requested() if json_lines is None else json_lines
    for handler in logger.handlers:
        if not any(isinstance(f, EventContextFilter) for f in handler.filters):
            handler.addFilter(EventContextFilter())
        if use_json:
            handler.setFormatter(JsonFormatter())


# One line per message at INFO: Celery's "Task … succeeded in …s", which carries the event's
# ids (EventContextFilter) and the run time. Celery's "Task … received" line, written before the
# task starts and so without the ids, goes: three lines per message (with the consumer's own
# "handled", now at DEBUG) cost a tenth of a busy system's CPU in formatting and in the process
# manager relaying them. Flower shows receipts from the task events. `--loglevel DEBUG` keeps it.
PER_TASK_LOGGERS = ("celery.worker.strategy",)


def quiet_per_task_lines(loglevel: int | str | None = None, **_: Any) -> None:
    """Keep Celery's per-task "received" line out of an INFO log; failures still show."""
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    if isinstance(level, int) and level <= logging.DEBUG:
        return
    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _on_worker_logger(logger: logging.Logger, **kwargs: Any) -> None:
    install(logger)
    quiet_per_task_lines(**kwargs)


def _on_task_logger(logger: logging.Logger, **_: Any) -> None:
    install(logger)


def _context_of_task(task: Any, args: Any) -> dict[str, Any] | None:
    """A subscriber task's one argument is the CloudEvent; anything else has no ids to lend."""
    body = args[0] if args else None
    if not isinstance(body, dict) or "id" not in body:
        return None
    retries = getattr(getattr(task, "request", None), "retries", 0) or 0
    return {
        "order_id": body.get("subject"),
        "event_id": body.get("id"),
        "correlation_id": body.get("correlationid"),
        "task": getattr(task, "name", None),
        "attempt": int(retries) + 1,
    }


_tokens: dict[str, Any] = {}


def _bind_task_context(task_id: str, task: Any, args: Any = None, **_: Any) -> None:
    # Celery's own lines about the task (received, succeeded, retry) then carry its ids too.
    context = _context_of_task(task, args)
    if context is not None:
        _tokens[task_id] = _handling.set(context)


def _unbind_task_context(task_id: str, **_: Any) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            _handling.reset(token)
        except ValueError:  # set in another context (another thread); drop it there
            _handling.set(None)


def connect_to_celery() -> None:
    """Put the event's ids on every log line of a Celery process: the JSON formatter and the
    context filter on the loggers Celery sets up, and each task's ids bound while it runs.
    Called once by the Celery app's start-up (config.celery); calling it again changes nothing."""
    for signal, receiver in (
        (after_setup_logger, _on_worker_logger),
        (after_setup_task_logger, _on_task_logger),
        (task_prerun, _bind_task_context),
        (task_postrun, _unbind_task_context),
    ):
        signal.connect(receiver, weak=False, dispatch_uid=f"shoeshop.logs.{receiver.__name__}")
