"""The one Celery app every process shares; components' tasks are included by module name."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import celeryd_init

app = Celery(
    "shoeshop",
    include=[
        "shop.tasks",
        "workers.orders.tasks",
        "workers.payments.tasks",
        "workers.shipping.tasks",
    ],
)
app.config_from_object("config.celeryconfig")


def _refuse_outdated_schemas(**kwargs: Any) -> None:
    """A worker started against a database behind its code exits at once. Imported here, when a
    worker starts: beat and Flower, which share this module, open no database."""
    from workers.schema.guard import refuse_to_start_worker

    refuse_to_start_worker(**kwargs)


celeryd_init.connect(_refuse_outdated_schemas, weak=False)
