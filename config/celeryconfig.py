"""The broker contract: queues, routes, acknowledgements, serialisation. Loaded by name."""

from __future__ import annotations

from kombu.entity import Exchange, Queue

from config.settings import QUEUES, get_settings

_settings = get_settings()

broker_url = _settings.effective_broker_url
broker_connection_retry_on_startup = True
# Keep retrying while the broker is away instead of giving up after the default 100 attempts.
broker_connection_max_retries = None

# JSON only: a pickled message could run code on the worker.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# Events are fire-and-forget; every outcome is written to a component's database.
task_ignore_result = True
result_backend = None

# At-least-once: a message is acknowledged only once its task is done, and handed to another
# worker if this one dies mid-task. One message at a time per worker process.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# One queue per component, all on one direct exchange; routed by the task's name.
_exchange = Exchange("shoeshop", type="direct", durable=True)
task_queues = [Queue(name, _exchange, routing_key=name, durable=True) for name in QUEUES]
task_routes = {
    f"{name}.*": {"queue": name, "exchange": "shoeshop", "routing_key": name} for name in QUEUES
}
task_default_queue = "shop"
task_default_exchange = "shoeshop"
task_create_missing_queues = False

# Workers send task events (-E) so Flower sees every attempt; sent events show the publish.
worker_send_task_events = True
task_send_sent_event = True

# The longest retry waits retry_max_delay_s; an unacknowledged message is redelivered by Redis
# only after visibility_timeout, so it must be far above that (and above any task's runtime).
broker_transport_options = {
    "visibility_timeout": 3600,
    "confirm_publish": True,
}
