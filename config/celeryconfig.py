"""The broker contract: queues, routes, acknowledgements, serialisation. Loaded by name."""

from __future__ import annotations

from kombu.entity import Exchange, Queue

from config.settings import QUEUES, ConfigurationError, get_settings
from workers.messaging import broker_tls
from workers.messaging.broker_dead import component_queue_arguments, is_amqp

try:
    _settings = get_settings()
except ConfigurationError as exc:
    # Every Celery process (worker, beat, Flower) loads this module first: one line, no traceback.
    raise SystemExit(f"refusing to start: {exc}") from None

broker_url = _settings.effective_broker_url
_rabbitmq = is_amqp(broker_url)
# amqps:// and rediss://: the node's certificate and host name are checked on every connection
# (workers.messaging.broker_tls; SHOESHOP_BROKER_CA_FILE names a private CA). None: plain.
broker_use_ssl = broker_tls.broker_use_ssl(_settings)
# The shop's transports: a host-name check per connection on amqps://, one client per connection
# pool on Redis (workers.messaging.broker_tls.install).
broker_tls.install()
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

# Messages survive a broker restart (this is also Celery's default; stated because it matters).
task_default_delivery_mode = "persistent"

# One queue per component on one exchange; routed by the task's name. On RabbitMQ the queues
# are replicated quorum queues with a delivery limit and a dead-letter exchange, and the
# exchange is a topic exchange because Celery's native delayed delivery (which serves
# countdowns and retries on quorum queues, which have no per-message ETA) cannot route through
# a direct one. Redis keeps plain lists on a direct exchange.
_exchange = Exchange("shoeshop", type="topic" if _rabbitmq else "direct", durable=True)
_queue_arguments = component_queue_arguments() if _rabbitmq else None
task_queues = [
    Queue(name, _exchange, routing_key=name, durable=True, queue_arguments=_queue_arguments)
    for name in QUEUES
]
# Routes name the queue only. On a direct exchange (Redis) Celery then sends straight to the
# queue's list; naming the exchange too made kombu look up its bindings in Redis (SMEMBERS, and
# a client object) before every message. On RabbitMQ the queue's topic exchange is used.
task_routes = {f"{name}.*": {"queue": name} for name in QUEUES}
task_default_queue = "shop"
task_default_exchange = "shoeshop"
task_create_missing_queues = False

# Celery >= 5.5: on quorum queues a countdown is served by RabbitMQ itself through delay
# queues of the same (quorum) type, and global QoS, which quorum queues refuse, is switched off.
broker_native_delayed_delivery_queue_type = "quorum"
worker_detect_quorum_queues = True

# A message that cannot be decoded is parked before Celery acknowledges it (it would be dropped).
worker_consumer = "workers.messaging.undecodable:ParkingConsumer"

# Workers send task events (-E) so Flower sees every attempt. Publishers send no task-sent
# event: it would add a message to every message, and Flower learns of each task when a worker
# receives it.
worker_send_task_events = True

# A worker's remote-control queue is not exclusive to its connection: a worker that reconnects
# after its connection went silent (workers.messaging.watchdog) declares it again while RabbitMQ
# still holds the silent connection open, which an exclusive queue refuses (RESOURCE_LOCKED,
# and the worker stops). The queue still expires once no worker uses it.
control_queue_exclusive = False
task_send_sent_event = False

# The longest retry waits retry_max_delay_s; an unacknowledged message is redelivered by Redis
# only after visibility_timeout, so it must be far above that (and above any task's runtime).
# confirm_publish makes RabbitMQ acknowledge every publish (publisher confirms); Redis ignores it.
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout_s,
    # Every worker looks for expired unacknowledged messages every 5 s (kombu's default throttle
    # makes that every 100 s), so a killed worker's messages return soon after the timeout.
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "confirm_publish": True,
    # Redis: a command on a connection that went silent (a publish, an acknowledgement, a
    # control message) fails after this many seconds instead of blocking its thread for ever;
    # far above a healthy round trip, and above BRPOP's own 1 s wait. The consumer's watchdog
    # (workers.messaging.watchdog) relies on it to get the worker's loop back.
    "socket_timeout": 10,
}

# Beat only nudges: the deadlines themselves are rows in the databases (orders: an unpaid or an
# unshipped order, under the task's old name; the shop: an order orders has not taken up), so a
# restart of beat or of any worker loses no timer. Each sweep is idempotent, a second beat harmless.
PAYMENT_SWEEP_INTERVAL_S = 10.0
beat_schedule = {
    "sweep-payment-deadlines": {
        "task": "orders.sweep_payment_deadlines",
        "schedule": PAYMENT_SWEEP_INTERVAL_S,
        "options": {"queue": "orders", "expires": PAYMENT_SWEEP_INTERVAL_S},
    },
    "sweep-acceptance-deadlines": {
        "task": "shop.sweep_acceptance_deadlines",
        "schedule": PAYMENT_SWEEP_INTERVAL_S,
        "options": {"queue": "shop", "expires": PAYMENT_SWEEP_INTERVAL_S},
    },
}
# Parcels packed for SHOESHOP_PACKING_DELAY seconds leave on the next sweep after that.
PACKING_SWEEP_INTERVAL_S = 1.0
if _settings.packing_delay_s > 0:
    beat_schedule["dispatch-packed-parcels"] = {
        "task": "shipping.dispatch_packed",
        "schedule": PACKING_SWEEP_INTERVAL_S,
        "options": {"queue": "shipping", "expires": PACKING_SWEEP_INTERVAL_S},
    }
