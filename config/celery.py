"""The one Celery app every process shares; components' tasks are included by module name."""

from __future__ import annotations

from celery import Celery

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
