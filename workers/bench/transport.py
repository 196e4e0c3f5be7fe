"""The Celery app of a baseline: the system's transport contract, on queues of its own."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from celery.signals import after_setup_logger
from kombu.entity import Exchange, Queue

from config.settings import get_settings
from workers.messaging import broker_tls
from workers.messaging.logs import quiet_per_task_lines


def baseline_app(name: str, exchange: str, queues: Sequence[str], default_queue: str) -> Celery:
    """A Celery app with the system's transport settings (JSON only, late acks, reject on a lost
    worker, prefetch 1, publisher confirms, task events, Redis's visibility timeout, restore
    sweep and socket timeout) routing to ``queues`` on ``exchange``.

    Both baselines use it, so neither is tuned down or up against the system: what they drop is
    what the shop adds on top of Celery, never a setting of Celery's own.
    """
    # The system's transports (on Redis, one client per pool, not per command) on this side too.
    broker_tls.install()
    app = Celery(name)
    routes = Exchange(exchange, type="direct", durable=True)  # type: ignore[no-untyped-call]
    app.conf.update(
        broker_url=get_settings().effective_broker_url,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[
            Queue(queue, routes, routing_key=queue)  # type: ignore[no-untyped-call]
            for queue in queues
        ],
        task_default_queue=default_queue,
        task_default_exchange=exchange,
        task_create_missing_queues=False,
        worker_send_task_events=True,
        task_send_sent_event=False,
        # config/celeryconfig.py's transport options (not imported: it wires the system's
        # signal handlers): how soon a killed worker's taken messages come back on Redis (the
        # visibility timeout, and a sweep every 5 s rather than kombu's 100) is a setting of
        # the transport, not a guarantee of the shop's, so the baselines have the system's.
        broker_transport_options={
            "visibility_timeout": get_settings().visibility_timeout_s,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            "confirm_publish": True,
            "socket_timeout": 10,
        },
    )
    return app


def quiet_task_lines() -> None:
    """The same log lines per task as the system's workers."""
    after_setup_logger.connect(quiet_per_task_lines, weak=False)
