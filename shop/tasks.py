"""The shop's Celery tasks: its subscribers, registered from the subscription table (see
consumer), and the sweep of its acceptance deadlines."""

from __future__ import annotations

from config.celery import app
from shop import acceptance, handlers
from workers.messaging.consumer import register_subscribers
from workers.messaging.envelope import utcnow

register_subscribers(app, "shop", handlers)


@app.task(name="shop.sweep_acceptance_deadlines")
def sweep_acceptance_deadlines() -> int:
    """Run by beat every few seconds; the deadlines themselves live in the shop's database."""
    return acceptance.sweep(app, utcnow())
