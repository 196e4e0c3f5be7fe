"""The one Celery app every process shares; components' tasks are included by module name."""

from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_init

from workers.schema.guard import refuse_to_start_worker

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
# A worker started against a database behind its code exits at once (workers.schema.guard).
celeryd_init.connect(refuse_to_start_worker, weak=False)
