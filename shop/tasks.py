"""The shop's subscriber tasks, registered from the subscription table (see consumer)."""

from __future__ import annotations

from config.celery import app
from shop import handlers
from workers.messaging.consumer import register_subscribers

register_subscribers(app, "shop", handlers)
