"""The notifications component's Celery tasks: its subscribers, registered from the subscription
table (see consumer). The worker refuses to start without SHOESHOP_SMTP_URL
(workers.schema.guard)."""

from __future__ import annotations

from config.celery import app
from workers.messaging.consumer import register_subscribers
from workers.notifications import handlers

COMPONENT = "notifications"


register_subscribers(app, COMPONENT, handlers)
