"""Prometheus metrics of the shop and of the pipeline behind it, served at /metrics.

The shop reads its own numbers (orders from its read model, checkout times) and the broker's
queue depths. What lives in other components' tables (every outbox's backlog, the dead letters)
is read by the operations component, which this module does not import: the app factory adds
those readers as sources (``add_source``; see ``shop.web.admin.add_metric_sources``).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config.celery import app as celery_app
from config.settings import QUEUES
from shop import readmodel
from workers.messaging.database import engine_for

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

# The endpoints that place an order, and the channel each one stands for.
CHECKOUT_ENDPOINTS = {"api.place_order": "api", "pages.product": "page"}
# Checkout seals the card and runs one short transaction: tens of milliseconds when healthy,
# seconds when the gateway's key or the database is slow.
CHECKOUT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A scrape must answer even when the broker is away; Prometheus times out after 10 s by default.
BROKER_TIMEOUT_S = 2.0

# registry=None: the histogram is added to each scrape's registry by hand (one process), or read
# back from the files of every gunicorn worker (PROMETHEUS_MULTIPROC_DIR, see gunicorn_conf.py).
CHECKOUT_SECONDS = Histogram(
    "shoeshop_checkout_duration_seconds",
    "Time to answer a checkout request (validate, seal the card, reserve, write the outbox).",
    ["channel", "status"],
    buckets=CHECKOUT_BUCKETS,
    registry=None,
)


Reader = Callable[[], Iterable[Metric]]
"""A source of metrics: reads its numbers when called (at each scrape), raises when it cannot."""
_SOURCES = "shoeshop.metric_sources"


def init_app(app: Flask) -> None:
    """Serve /metrics with the shop's own sources and time every checkout request."""
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_observe_checkout)
    add_source(app, "orders", order_metrics)
    add_source(app, "broker", queue_metrics)


def add_source(app: Flask, name: str, read: Reader) -> None:
    """Report what ``read`` yields at every scrape of this app's /metrics, and whether it answered
    as ``shoeshop_metrics_source_up{source=name}``. A name added again replaces its reader."""
    app.extensions.setdefault(_SOURCES, {})[name] = read


@bp.get("/metrics")
def metrics() -> Response:
    sources: dict[str, Reader] = current_app.extensions.get(_SOURCES, {})
    return Response(generate_latest(_scrape_registry(sources)), mimetype=CONTENT_TYPE_LATEST)


def _scrape_registry(sources: dict[str, Reader]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(CHECKOUT_SECONDS)
    registry.register(PipelineCollector(sources))
    return registry


def _start_timer() -> None:
    if request.method == "POST" and request.endpoint in CHECKOUT_ENDPOINTS:
        g.checkout_started = time.perf_counter()


def _observe_checkout(response: Response) -> Response:
    started: float | None = g.pop("checkout_started", None)
    if started is not None and request.endpoint is not None:
        channel = CHECKOUT_ENDPOINTS[request.endpoint]
        CHECKOUT_SECONDS.labels(channel, str(response.status_code)).observe(
            time.perf_counter() - started
        )
    return response


class PipelineCollector(Collector):
    """Reads the numbers at scrape time from where they live, so every process reports the same.

    ``sources``: each source's name and reader, as ``add_source`` registered them.
    """

    def __init__(self, sources: dict[str, Reader]) -> None:
        self._sources = dict(sources)

    def collect(self) -> Iterable[Metric]:
        source_up = GaugeMetricFamily(
            "shoeshop_metrics_source_up",
            "1 when the source of a group of metrics answered this scrape, 0 when it did not.",
            labels=["source"],
        )
        for source, read in self._sources.items():
            try:
                families = list(read())
            except Exception:  # one unreachable source must not hide the others
                log.exception("metrics: reading %s failed", source)
                source_up.add_metric([source], 0)
                continue
            source_up.add_metric([source], 1)
            yield from families
        yield source_up


def order_metrics() -> Iterator[Metric]:
    """Counts from the shop's read model: monotonic while the database lives, like counters."""
    with engine_for("shop").connect() as conn:
        rows = readmodel.counts(conn)
        waiting = readmodel.attention_counts(conn)
    by_status: Counter[str] = Counter()
    cancelled_by_reason: Counter[str] = Counter()
    for status, reason, count in rows:
        by_status[status] += count
        if status == "CANCELLED":
            cancelled_by_reason[reason or "unknown"] += count
    placed = CounterMetricFamily("shoeshop_orders_placed", "Orders accepted at checkout.")
    placed.add_metric([], sum(by_status.values()))
    shipped = CounterMetricFamily("shoeshop_orders_shipped", "Orders shipped.")
    shipped.add_metric([], by_status["SHIPPED"])
    cancelled = CounterMetricFamily(
        "shoeshop_orders_cancelled", "Orders cancelled, by reason.", labels=["reason"]
    )
    for reason, count in sorted(cancelled_by_reason.items()):
        cancelled.add_metric([reason], count)
    current = GaugeMetricFamily(
        "shoeshop_orders", "Orders in each status right now.", labels=["status"]
    )
    for status in ("PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"):
        current.add_metric([status], by_status[status])
    attention = GaugeMetricFamily(
        "shoeshop_orders_needing_attention",
        "Orders a failed compensation left for an operator (a refund refused, a refund or stock "
        "release parked), by reason; 0 for each reason when none.",
        labels=["reason"],
    )
    for reason in sorted({*readmodel.ATTENTION_REASONS, *waiting}):
        attention.add_metric([reason], waiting.get(reason, 0))
    yield from (placed, shipped, cancelled, current, attention)


def queue_metrics() -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "shoeshop_queue_depth", "Messages waiting in each component's queue.", labels=["queue"]
    )
    for queue, count in queue_depths(celery_app, QUEUES).items():
        depth.add_metric([queue], count)
    yield depth


def queue_depths(app: Any, queues: Iterable[str]) -> dict[str, int]:
    """Ready messages per queue: a passive declare answers on RabbitMQ and Redis alike."""
    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        for queue in queues:
            channel = conn.channel()
            try:
                _, count, _ = channel.queue_declare(queue=queue, passive=True)
                depths[queue] = int(count)
            except conn.channel_errors:
                # Not declared yet (RabbitMQ), or empty and so absent (Redis): nothing waits.
                depths[queue] = 0
            finally:
                channel.close()
    return depths
