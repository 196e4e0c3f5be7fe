"""A worker whose broker connection goes silent (nothing closed, nothing more arrives) heals
itself: its watchdog (workers.messaging.watchdog) sees messages waiting while it receives none,
reconnects its consumer, and the worker takes them. A real `celery worker` process of the
Procfile, behind a proxy that silences the connections it carries, on each broker."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from celery import Celery

# The in-process worker leaves the notifications queue to the process under test.
from tests.integration.test_notifications import (  # noqa: F401 (a fixture)
    applied,
    notifications_paused,
    order_placed,
)
from tests.support.processes import Processes
from tests.support.proxy import SilencingProxy, through, upstream_of
from tests.support.shop import wait_for
from workers.messaging.publisher import send_to

pytestmark = pytest.mark.usefixtures("worker")

TASK = "notifications.on_order_placed"
WINDOW_S = 15
SENT = 8


@pytest.mark.usefixtures("notifications_paused")
def test_a_worker_whose_connection_went_silent_reconnects_and_takes_its_messages(
    celery_app: Celery, tmp_path: Path
) -> None:
    broker_url = os.environ["SHOESHOP_BROKER_URL"]
    rabbitmq = broker_url.startswith("amqp")
    proxy = SilencingProxy(upstream_of(broker_url))
    processes = Processes(env=dict(os.environ), log_dir=tmp_path / "logs")
    env = {
        "SHOESHOP_BROKER_URL": through(proxy, broker_url),
        "SHOESHOP_WATCHDOG_WINDOW": str(WINDOW_S),
    }
    first = order_placed(f"dog-{uuid.uuid4().hex[:8]}@example.com")
    after = [order_placed(f"dog-{uuid.uuid4().hex[:8]}@example.com") for _ in range(SENT)]

    def done() -> list[str]:
        return [event.id for event in after if applied(event.id, TASK)]

    try:
        processes.start("notifications", env=env)
        send_to(celery_app, TASK, first.to_dict())
        wait_for(lambda: applied(first.id, TASK), timeout_s=30)

        assert proxy.silence() > 0
        for event in after:  # on the test's own connection
            send_to(celery_app, TASK, event.to_dict())
        # What the silent connection had taken is out of reach (Redis: the one its pending
        # BRPOP popped; RabbitMQ: up to the prefetch, 4); the rest waits ready, which the
        # watchdog sees: it reconnects after WINDOW_S, and the worker takes them.
        wait_for(lambda: len(done()) >= SENT - 4, timeout_s=60)
        log = processes.tail("notifications", 50000)
        # The network drops the silent connections in the end: RabbitMQ then hands on what it
        # had given them (Redis lost the popped message: the relay's redelivery sweep re-sends
        # a published event, tests/integration/test_redelivery.py).
        proxy.drop_silenced()
        wait_for(lambda: len(done()) >= (SENT if rabbitmq else SENT - 1), timeout_s=60)
    finally:
        processes.close()
        proxy.close()

    assert "reconnecting its consumer" in log, log
    assert "exiting with 75" not in log
