"""The payments component's Celery tasks: its subscribers, registered from the subscription
table (see consumer); each calls the gateway, then records its answer."""

from __future__ import annotations

from config.celery import app
from workers.messaging.consumer import register_subscribers
from workers.payments import handlers

register_subscribers(app, handlers.COMPONENT, handlers)
