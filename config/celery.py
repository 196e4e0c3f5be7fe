"""The one Celery app every process shares; components' tasks are included by module name."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import beat_init, celeryd_init, worker_init, worker_ready, worker_shutdown

app = Celery(
    "shoeshop",
    include=[
        "shop.tasks",
        "workers.orders.tasks",
        "workers.payments.tasks",
        "workers.shipping.tasks",
        "workers.notifications.tasks",
    ],
)
app.config_from_object("config.celeryconfig")


def _refuse_outdated_schemas(**kwargs: Any) -> None:
    """A worker started against a database behind its code exits at once. Imported here, when a
    worker starts: beat and Flower, which share this module, open no database."""
    from workers.schema.guard import refuse_to_start_worker

    refuse_to_start_worker(**kwargs)


def _start_tracing(sender: Any = None, **kwargs: Any) -> None:
    """Tracing's set-up when it is on (workers.messaging.tracing), named after the worker's
    node (``orders@host`` → ``shoeshop-orders``) or ``beat``. ``worker_init`` runs in the
    worker's main process before its pool starts, under ``--pool threads`` as under prefork
    (whose children inherit it: the SDK's batch processor restarts its thread after a fork);
    ``worker_process_init`` would run under prefork only."""
    from workers.messaging import tracing

    hostname = str(getattr(sender, "hostname", "") or "")
    tracing.setup(hostname.split("@", 1)[0] if hostname else "beat")


def _stop_tracing(**kwargs: Any) -> None:
    """Export the spans still buffered as the worker stops (SIGTERM's warm shutdown)."""
    from workers.messaging import tracing

    tracing.shutdown()


def wire_celery_process() -> None:
    """Everything a Celery process (worker, beat, Flower) wires beside the app itself, in one
    place, called by its entry module (config.celery_process, the Procfile's ``-A``); importing
    this module, as the web does to publish, connects nothing. A worker refuses to
    start against a database behind its code, declares RabbitMQ's dead-letter route when it is
    ready, puts each event's ids on its log lines, watches its consumer
    (workers.messaging.watchdog), and traces when tracing is on (workers.messaging.tracing)."""
    from workers.messaging import broker_dead, logs, watchdog

    celeryd_init.connect(_refuse_outdated_schemas, weak=False, dispatch_uid="shoeshop.schemas")
    worker_ready.connect(
        broker_dead.declare_when_a_worker_starts, weak=False, dispatch_uid="shoeshop.dead_route"
    )
    logs.connect_to_celery()
    watchdog.wire()
    worker_init.connect(_start_tracing, weak=False, dispatch_uid="shoeshop.tracing")
    beat_init.connect(_start_tracing, weak=False, dispatch_uid="shoeshop.tracing.beat")
    worker_shutdown.connect(_stop_tracing, weak=False, dispatch_uid="shoeshop.tracing.stop")
