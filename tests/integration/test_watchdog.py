"""A worker whose broker connection goes silent (nothing closed, nothing more arrives) heals
itself: its watchdog (workers.messaging.watchdog) sees messages waiting while it receives none,
reconnects its consumer, and the worker takes them. A real `celery worker` process of the
Procfile, behind a proxy that silences the connections it carries, on each broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.integration.test_notifications import applied, order_placed
from tests.support.processes import Processes
from tests.support.proxy import SilencingProxy, through, upstream_of
from tests.support.shop import wait_for
from workers.messaging.publisher import send_to

pytestmark = pytest.mark.usefixtures("worker")

TASK = "notifications.on_order_placed"
WINDOW_S = 6


@pytest.fixture
def notifications_to_the_process(celery_app: Celery, worker: Any) -> Iterator[None]:
    """The in-process worker leaves the notifications queue to the process under test."""
    replies = celery_app.control.cancel_consumer(
        "notifications", destination=[worker.hostname], reply=True
    )
    assert replies, "the in-process worker did not answer"
    yield
    celery_app.control.add_consumer("notifications", destination=[worker.hostname], reply=True)


@pytest.mark.usefixtures("notifications_to_the_process")
def test_a_worker_whose_connection_went_silent_reconnects_and_takes_its_messages(
    celery_app: Celery, tmp_path: Path
) -> None:
    broker_url = os.environ["SHOESHOP_BROKER_URL"]
    proxy = SilencingProxy(upstream_of(broker_url))
    processes = Processes(env=dict(os.environ), log_dir=tmp_path / "logs")
    env = {
        "SHOESHOP_BROKER_URL": through(proxy, broker_url),
        "SHOESHOP_WATCHDOG_WINDOW": str(WINDOW_S),
    }
    first, second = (order_placed(f"dog-{uuid.uuid4().hex[:8]}@example.com") for _ in "12")
    try:
        processes.start("notifications", env=env)
        send_to(celery_app, TASK, first.to_dict())
        wait_for(lambda: applied(first.id, TASK), timeout_s=30)

        assert proxy.silence() > 0
        send_to(celery_app, TASK, second.to_dict())  # on the test's own connection
        # Kombu's own checks would take 26 s (Redis) to 240 s (RabbitMQ); the watchdog looks
        # every second and acts after WINDOW_S.
        wait_for(lambda: applied(second.id, TASK), timeout_s=25)
        log = processes.tail("notifications", 20000)
    finally:
        processes.close()
        proxy.close()

    assert "reconnecting its consumer" in log, log
    assert "exiting with 75" not in log
