"""OpenTelemetry traces, off unless configured: one trace per order, carried by its events.

Tracing is on when ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; ``none`` is off) or
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set. Off, this
module imports nothing of OpenTelemetry and every function here is a cheap no-op: a worker keeps
its memory (tests/unit/test_tracing_off.py).

The trace context travels inside each event as CloudEvents' distributed tracing extension
(``traceparent``, and ``tracestate`` when there is one), written once when the event is created
and stored with it in the outbox, so it survives the relay, redelivery, a dead letter's replay and
a deadline timer. Spans follow OpenTelemetry's messaging semantic conventions 1.44.0 (the version
of ``opentelemetry-semantic-conventions`` 0.66b1, which the SDK 1.45.1 pins):

- ``create <event name>`` (PRODUCER): an event is created, a child of the current span; its
  context is the event's ``traceparent`` (``stamped``). A deadline a timer will enforce gets one
  too, ``create order.deadline_passed`` (``scheduled``), whose context the deadline row keeps.
- ``process <event name>`` (CONSUMER): one delivery of an event to one subscriber task (or a
  timer acting on its deadline), a child of the event's ``traceparent`` (``processing``); the
  events its handler creates are created inside it.

Celery's own instrumentation is not used: it would parent a task on the context of whoever sent
the message (the relay's loop, the redelivery sweep, a replay), a second parent beside the event's.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workers.messaging.envelope import Envelope

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

SEMCONV_VERSION = "1.44.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
TRACER_NAME = "shoeshop"
DEADLINE_EVENT = "order.deadline_passed"

# W3C Trace Context, version 00: version-traceid-parentid-flags, lower-case hex, neither id all
# zeros. What this shop writes; anything else an event carries is read as no context at all.
TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_system = "redis"
# Engines opened before ``setup`` named the process (a worker's schema check runs before
# ``worker_init``): instrumented by ``setup``.
_waiting_engines: list[Engine] = []


def enabled() -> bool:
    """Whether this process traces, from its environment (read each time: it is cheap)."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def is_traceparent(value: object) -> bool:
    """Whether ``value`` is a W3C version-00 ``traceparent`` with a valid trace and span id."""
    return isinstance(value, str) and TRACEPARENT.fullmatch(value) is not None


def setup(service: str | None = None, *, exporter: SpanExporter | None = None) -> bool:
    """Set this process's TracerProvider up once (later calls do nothing) and instrument urllib3;
    returns whether tracing is on. ``service`` names the process (``OTEL_SERVICE_NAME`` wins);
    ``exporter`` replaces the OTLP/HTTP one (tests: an in-memory exporter, exported at once).

    Called where each process kind starts, at a point that runs under ``--pool threads`` too
    (config.celery's ``worker_init``/``beat_init``, the web's app factory, the relay's loop),
    and by the first span of a process that did not (``_tracer``)."""
    global _provider, _system
    if _provider is not None:
        return True
    if not enabled() and exporter is None:
        return False
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        from config.settings import get_settings

        name = os.environ.get("OTEL_SERVICE_NAME") or f"shoeshop-{service or 'process'}"
        resource = Resource.create({"service.name": name, "service.namespace": "shoeshop"})
        provider = TracerProvider(resource=resource, sampler=_sampler())
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider.add_span_processor(BatchSpanProcessor(_exporter()))
        trace.set_tracer_provider(provider)
        from workers.messaging.broker_dead import is_amqp

        _system = "rabbitmq" if is_amqp(get_settings().effective_broker_url) else "redis"
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

        URLLib3Instrumentor().instrument(tracer_provider=provider)
        _provider = provider
        waiting = list(_waiting_engines)
        _waiting_engines.clear()
    for engine in waiting:
        instrument_engine(engine)
    log.info("tracing on: service %s, semantic conventions %s", name, SEMCONV_VERSION)
    return True


def shutdown() -> None:
    """Export what is still buffered and stop (SIGTERM's path: a worker's ``worker_shutdown``,
    gunicorn's ``worker_exit``, the relay's stop); nothing when tracing never started."""
    provider = _provider
    if provider is not None:
        provider.force_flush()
        provider.shutdown()


def _exporter() -> SpanExporter:
    """The exporter ``OTEL_TRACES_EXPORTER`` names: ``console``, or OTLP over HTTP (protobuf,
    to ``OTEL_EXPORTER_OTLP_ENDPOINT``/v1/traces; the exporter reads its own variables)."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _sampler() -> Any:
    """Every span of a trace, but no trace that is only a database query or an HTTP call: the
    relay's polls, beat's sweeps and the watchdog's looks would otherwise each start one."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )
    from opentelemetry.trace import SpanKind, get_current_span

    class NoLoneClientSpans(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            parent = get_current_span(parent_context).get_span_context()
            if not parent.is_valid and kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ParentBased(ALWAYS_ON).should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "NoLoneClientSpans"

    return NoLoneClientSpans()


def _tracer() -> Tracer:
    from opentelemetry import trace

    setup()
    return trace.get_tracer(TRACER_NAME, schema_url=SCHEMA_URL)


def _event_attributes(event: Envelope, operation: str) -> dict[str, str]:
    attributes = {
        "messaging.system": _system,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": event.name,
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_source": event.source,
        "cloudevents.event_type": event.type,
        "cloudevents.event_subject": event.subject,
        "cloudevents.event_spec_version": event.specversion,
    }
    if event.correlationid:
        attributes["messaging.message.conversation_id"] = event.correlationid
    if event.causationid:
        # No convention names it; the envelope's own extension name, under the shop's prefix.
        attributes["shoeshop.causationid"] = event.causationid
    return attributes


def _traceparent_of(span: Span) -> str:
    from opentelemetry.trace import format_span_id, format_trace_id

    context = span.get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}-" + (
        f"{int(context.trace_flags):02x}"
    )


def stamped(event: Envelope) -> Envelope:
    """``event`` with the context of a new ``create <name>`` PRODUCER span, a child of the
    current span, as its ``traceparent``. An event that already has one is returned as it is
    (a re-sent or relayed event is never re-stamped), as is any event while tracing is off."""
    if event.traceparent or not enabled():
        return event
    from opentelemetry.trace import SpanKind

    tracer = _tracer()
    with tracer.start_as_current_span(
        f"create {event.name}",
        kind=SpanKind.PRODUCER,
        attributes=_event_attributes(event, "create"),
    ) as span:
        traceparent = _traceparent_of(span)
    return replace(event, traceparent=traceparent) if traceparent else event


def scheduled(order_id: str) -> str | None:
    """The context of a new ``create order.deadline_passed`` PRODUCER span, a child of the
    current span, for a deadline row to keep (None while tracing is off): the timer that acts on
    the deadline processes its ``order.deadline_passed`` inside that context (``processing``)."""
    if not enabled():
        return None
    from opentelemetry.trace import SpanKind

    with _tracer().start_as_current_span(
        f"create {DEADLINE_EVENT}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": _system,
            "messaging.operation.type": "create",
            "messaging.operation.name": "create",
            "messaging.destination.name": DEADLINE_EVENT,
            "messaging.message.conversation_id": order_id,
        },
    ) as span:
        return _traceparent_of(span) or None


def processing(event: Envelope, subscriber: str, attempt: int = 1) -> AbstractContextManager[None]:
    """A ``process <name>`` CONSUMER span around one delivery of ``event`` to ``subscriber``
    (a task name, ``<queue>.<name>``), a child of the event's ``traceparent`` (a new trace when
    it has none or a malformed one), current while the block runs: what the handler creates is
    created inside it. An exception leaving the block is recorded on it and re-raised.

    Each call has its own span and attaches its own context (``context.attach``/``detach`` in
    the calling thread), so two deliveries at once under the thread pool share nothing."""
    if not enabled():
        return nullcontext()
    return _processing(event, subscriber, attempt)


@contextmanager
def _processing(event: Envelope, subscriber: str, attempt: int) -> Iterator[None]:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": event.traceparent} if is_traceparent(event.traceparent) else {}
    if carrier and event.tracestate:
        carrier["tracestate"] = event.tracestate
    parent = TraceContextTextMapPropagator().extract(carrier)
    attributes: dict[str, str | int] = {
        **_event_attributes(event, "process"),
        # Task names start with their queue (workers.messaging.subscriptions.queue_of).
        "messaging.consumer.group.name": subscriber.split(".", 1)[0],
        "messaging.destination.subscription.name": subscriber,
        "shoeshop.attempt": attempt,
    }
    span = _tracer().start_span(
        f"process {event.name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    )
    with trace.use_span(span, end_on_exit=True, record_exception=True):
        yield


def failed(exc: BaseException) -> None:
    """Record ``exc`` on the current span (a delivery that will be retried or parked) and mark
    it failed; nothing while tracing is off."""
    if not enabled():
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def continued(traceparent: str | None, name: str, order_id: str) -> AbstractContextManager[None]:
    """An INTERNAL span ``name`` under a stored context (a timer acting on a deadline whose row
    kept ``traceparent``), current while the block runs; a new trace when there is none."""
    if not enabled():
        return nullcontext()
    return _continued(traceparent, name, order_id)


@contextmanager
def _continued(traceparent: str | None, name: str, order_id: str) -> Iterator[None]:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent} if is_traceparent(traceparent) else {}
    parent = TraceContextTextMapPropagator().extract(carrier)
    span = _tracer().start_span(
        name, context=parent, attributes={"messaging.message.conversation_id": order_id}
    )
    with trace.use_span(span, end_on_exit=True, record_exception=True):
        yield


def instrument_engine(engine: Engine) -> None:
    """Trace the engine's statements (a CLIENT span each, inside the current span), as
    ``SQLAlchemyInstrumentor().instrument(engine=…)`` does; that entry point instruments once
    per process, and each component's engine is opened lazily, one by one. An engine opened
    before ``setup`` is instrumented by it."""
    if not enabled():
        return
    if _provider is None:
        with _lock:
            if _provider is None:
                _waiting_engines.append(engine)
                return
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__

    scope = "opentelemetry.instrumentation.sqlalchemy"
    tracer = trace.get_tracer(scope, __version__, _provider)
    connections = metrics.get_meter(scope, __version__).create_up_down_counter(
        "db.client.connections.usage", unit="connections"
    )
    EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]


# W3C Trace Context and Baggage, as WSGI names a request's headers.
UNTRUSTED_HEADERS = ("HTTP_TRACEPARENT", "HTTP_TRACESTATE", "HTTP_BAGGAGE")


def instrument_flask(app: Flask, service: str = "web") -> None:
    """Trace each request the app serves (a SERVER span, the parent of a checkout's events)."""
    if not setup(service):
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    # Long-lived streams and probes would each make a trace of no interest.
    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics,/events"
    )
    # The shop is a public edge: a trace context a client sends would choose an order's trace
    # id and whether it is sampled. Dropped before the instrumentation reads it (this wrapper
    # runs first), so every request starts a trace of the shop's own.
    traced = app.wsgi_app

    def without_client_context(environ: dict[str, Any], start_response: Any) -> Any:
        for header in UNTRUSTED_HEADERS:
            environ.pop(header, None)
        return traced(environ, start_response)

    app.wsgi_app = without_client_context  # type: ignore[method-assign]
