"""Handler log lines carry the event's ids, as text or as JSON lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from workers.messaging.logs import (
    PER_TASK_LOGGERS,
    EventContextFilter,
    JsonFormatter,
    handling,
    install,
    quiet_per_task_lines,
)

CONTEXT = {
    "order_id": "order-1",
    "event_id": "event-1",
    "correlation_id": "order-1",
    "task": "orders.on_order_placed",
    "attempt": 2,
}


@pytest.fixture()
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.unit.logs")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream, handler
    logger.handlers = []


def test_a_line_written_while_handling_an_event_carries_its_ids(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    install(logger, json_lines=False)

    with handling(CONTEXT):
        logger.info("charged %d%% of %s", 100, "the order")
    logger.info("between events")

    first, second = stream.getvalue().splitlines()
    assert first == (
        "[order_id=order-1 event_id=event-1 correlation_id=order-1 "
        "task=orders.on_order_placed attempt=2] charged 100% of the order"
    )
    assert second == "between events"


def test_json_lines_put_the_ids_in_their_own_fields(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, _ = captured
    install(logger, json_lines=True)

    with handling(CONTEXT):
        try:
            raise RuntimeError("gateway down")
        except RuntimeError:
            logger.exception("payment failed")

    line = json.loads(stream.getvalue())
    assert line["level"] == "ERROR"
    assert line["order_id"] == "order-1"
    assert line["event_id"] == "event-1"
    assert line["correlation_id"] == "order-1"
    assert line["message"].endswith("payment failed")
    assert "RuntimeError: gateway down" in line["exc_info"]


def test_the_json_switch_is_read_from_the_environment(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, _, handler = captured
    monkeypatch.setenv("SHOESHOP_LOG_FORMAT", "json")

    install(logger)
    install(logger)

    assert isinstance(handler.formatter, JsonFormatter)
    assert sum(isinstance(f, EventContextFilter) for f in handler.filters) == 1


@pytest.fixture()
def per_task_loggers() -> Iterator[list[logging.Logger]]:
    loggers = [logging.getLogger(name) for name in PER_TASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    yield loggers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize("loglevel", ["INFO", logging.INFO, "WARNING"])
def test_an_info_worker_log_leaves_out_celerys_received_line(
    per_task_loggers: list[logging.Logger], loglevel: str | int
) -> None:
    quiet_per_task_lines(loglevel=loglevel)
    for logger in per_task_loggers:
        assert not logger.isEnabledFor(logging.INFO)
        assert logger.isEnabledFor(logging.WARNING)  # retries and failures still show


def test_a_debug_worker_log_keeps_celerys_received_line(
    per_task_loggers: list[logging.Logger],
) -> None:
    for logger in per_task_loggers:
        logger.setLevel(logging.NOTSET)
    celery_logger = logging.getLogger("celery")
    level = celery_logger.level
    celery_logger.setLevel(logging.DEBUG)  # what `--loglevel DEBUG` sets up
    try:
        quiet_per_task_lines(loglevel="DEBUG")
        assert all(logger.isEnabledFor(logging.INFO) for logger in per_task_loggers)
    finally:
        celery_logger.setLevel(level)
