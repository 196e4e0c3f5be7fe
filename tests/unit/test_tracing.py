"""Traces (issue #19): the envelope carries its trace context, and the spans of one delivery
follow the event, never the message that happened to carry it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from celery import Celery
from celery.signals import worker_init, worker_process_init
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from workers.messaging import tracing
from workers.messaging.consumer import Subscriber
from workers.messaging.contracts import ShipmentCancelled, new_event
from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import subscribers_of
from workers.orders.handlers import deadline_passed

ORDER = "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# What Celery's own instrumentation would put in a message's headers: the sender's context.
SENDERS_TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-01"
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # on: setup is given its exporter
    tracing.setup("unit", exporter=EXPORTER)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def cancelled(traceparent: str = "") -> Envelope:
    event = new_event(ShipmentCancelled(order_id=ORDER), source="/shipping", subject=ORDER)
    return replace(event, traceparent=traceparent)


def named(exported: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in exported if span.name == name]


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def parent_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.parent is not None
    return f"{span.parent.trace_id:032x}", f"{span.parent.span_id:016x}"


# The envelope


def test_an_envelope_without_a_trace_context_is_written_as_release_0_1_0_wrote_it() -> None:
    wire = cancelled().to_dict()
    assert "traceparent" not in wire
    assert "tracestate" not in wire


def test_an_envelope_keeps_its_traceparent_through_a_round_trip() -> None:
    event = Envelope.from_dict({**cancelled().to_dict(), "traceparent": TRACEPARENT})
    assert event.traceparent == TRACEPARENT
    assert Envelope.from_dict(event.to_dict()).to_dict()["traceparent"] == TRACEPARENT


def test_a_traceparent_that_is_not_text_makes_the_envelope_invalid() -> None:
    from workers.messaging.errors import InvalidEvent

    with pytest.raises(InvalidEvent, match="traceparent"):
        Envelope.from_dict({**cancelled().to_dict(), "traceparent": 42})


def test_a_malformed_traceparent_is_kept_as_it_came_but_read_as_no_context() -> None:
    # Given an event whose traceparent is no W3C traceparent
    event = Envelope.from_dict({**cancelled().to_dict(), "traceparent": "00-zz-nonsense"})
    # Then it is still a valid event, re-sent unchanged, and tracing ignores it
    assert event.to_dict()["traceparent"] == "00-zz-nonsense"
    assert not tracing.is_traceparent(event.traceparent)
    assert tracing.is_traceparent(TRACEPARENT)
    assert not tracing.is_traceparent("00-" + "0" * 32 + "-b7ad6b7169203331-01")
    # However long: tracing never parks an event, whatever its context says.
    long = Envelope.from_dict({**cancelled().to_dict(), "traceparent": "00-" + "a" * 300})
    assert not tracing.is_traceparent(long.traceparent)


def test_the_timers_event_carries_the_context_its_deadline_kept() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert deadline_passed(ORDER, now, TRACEPARENT).to_dict()["traceparent"] == TRACEPARENT
    assert "traceparent" not in deadline_passed(ORDER, now).to_dict()


# Producing


def test_an_event_is_stamped_with_a_create_span_inside_the_current_span(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("checkout") as outer:
        event = tracing.stamped(cancelled())
    (create,) = named(spans.get_finished_spans(), "create shipment.cancelled")
    assert create.kind is SpanKind.PRODUCER
    assert create.attributes is not None
    assert create.attributes["messaging.operation.type"] == "create"
    assert create.attributes["messaging.message.id"] == event.id
    assert create.parent is not None and create.parent.span_id == outer.get_span_context().span_id
    trace_id, span_id = ids(create)
    assert event.traceparent[:52] == f"00-{trace_id}-{span_id}"
    assert int(event.traceparent[53:], 16) & 1  # sampled


def test_a_re_sent_event_keeps_its_traceparent(spans: InMemorySpanExporter) -> None:
    event = cancelled(TRACEPARENT)
    assert tracing.stamped(event) is event
    assert spans.get_finished_spans() == ()


# Consuming


class Recording(Subscriber):
    """A subscriber whose handler records the event it creates inside the delivery."""

    name = subscribers_of(ShipmentCancelled.TYPE)[0]
    component = name.split(".", 1)[0]
    created: dict[str, Envelope] = {}  # noqa: RUF012 - shared on purpose: one per test
    barrier: threading.Barrier | None = None

    def apply(self, event: Envelope, attempts: int) -> None:
        if self.barrier is not None:
            self.barrier.wait(timeout=10)  # both deliveries are inside their spans at once
        effect = new_event(ShipmentCancelled(order_id=ORDER), source="/shipping", cause=event)
        self.created[event.id] = tracing.stamped(effect)


# An app of the tests' own: the shared one keeps its real subscriber of that name.
APP = Celery("tracing-tests", set_as_current=False)


def deliver(task: Recording, body: dict[str, Any]) -> None:
    """One delivery as the worker runs it, with Celery's headers carrying another context."""
    type(task).bind(APP)
    task.push_request(retries=0, headers={"traceparent": SENDERS_TRACEPARENT})
    try:
        task.run(body)
    finally:
        task.pop_request()


def test_a_delivery_is_processed_under_its_events_context_not_the_senders(
    spans: InMemorySpanExporter,
) -> None:
    # Given an event created in one trace, sent by someone in another
    task = Recording()
    task.created = {}
    event = cancelled(TRACEPARENT)
    # When it is delivered
    deliver(task, event.to_dict())
    # Then its process span is a child of the event's create span, and what it creates is
    # created inside the process span
    (process,) = named(spans.get_finished_spans(), "process shipment.cancelled")
    assert process.kind is SpanKind.CONSUMER
    assert parent_ids(process) == (TRACEPARENT[3:35], TRACEPARENT[36:52])
    assert process.attributes is not None
    assert process.attributes["messaging.destination.subscription.name"] == task.name
    (create,) = named(spans.get_finished_spans(), "create shipment.cancelled")
    assert parent_ids(create) == ids(process)
    assert task.created[event.id].traceparent[3:35] == TRACEPARENT[3:35]


def test_two_deliveries_at_once_on_the_thread_pool_keep_their_own_spans(
    spans: InMemorySpanExporter,
) -> None:
    # Given two events of two traces, delivered at the same time by two threads of one task
    task = Recording()
    task.created = {}
    task.barrier = threading.Barrier(2)
    first = cancelled(TRACEPARENT)
    second = cancelled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    threads = [threading.Thread(target=deliver, args=(task, e.to_dict())) for e in (first, second)]
    # When both run inside their spans at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    # Then each created its event inside its own process span, in its own trace
    process = {
        span.attributes["messaging.message.id"]: span
        for span in named(spans.get_finished_spans(), "process shipment.cancelled")
        if span.attributes is not None
    }
    assert set(process) == {first.id, second.id}
    for event in (first, second):
        assert parent_ids(process[event.id]) == (event.traceparent[3:35], event.traceparent[36:52])
        trace_id, span_id = ids(process[event.id])
        created = task.created[event.id].traceparent
        assert created[3:35] == trace_id
        (create,) = [
            span
            for span in named(spans.get_finished_spans(), "create shipment.cancelled")
            if ids(span)[1] == created[36:52]
        ]
        assert parent_ids(create) == (trace_id, span_id)
    # And neither left its context behind in the thread that started them
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_delivery_that_fails_is_marked_failed(spans: InMemorySpanExporter) -> None:
    class Failing(Recording):
        def apply(self, event: Envelope, attempts: int) -> None:
            raise KeyError("a bug")

        def park(self, body: object, exc: BaseException, attempts: int) -> None:
            pass

    deliver(Failing(), cancelled(TRACEPARENT).to_dict())
    (process,) = named(spans.get_finished_spans(), "process shipment.cancelled")
    assert not process.status.is_ok
    assert [event.name for event in process.events] == ["exception"]


# Set-up


def test_tracing_starts_on_worker_init_which_the_thread_pool_runs_too() -> None:
    # worker_process_init fires in prefork's children only: the Procfile's --pool threads
    # never sends it, so tracing must not wait for it.
    from config.celery import wire_celery_process

    wire_celery_process()
    assert any(key[0] == "shoeshop.tracing" for key, _ in worker_init.receivers)
    assert not any("tracing" in str(key[0]) for key, _ in worker_process_init.receivers)


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_endpoint_is_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], on: bool
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.enabled() is on


def test_a_client_s_trace_context_is_ignored_at_the_shop_s_edge(
    spans: InMemorySpanExporter,
) -> None:
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule("/hello", "hello", lambda: "hi")
    tracing.instrument_flask(app, service="unit")

    response = app.test_client().get("/hello", headers={"traceparent": TRACEPARENT})

    assert response.status_code == 200
    [server] = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert server.parent is None  # a trace of the shop's own
    assert ids(server)[0] != TRACEPARENT.split("-")[1]


@pytest.mark.parametrize(
    ("given", "kept"), [(TRACEPARENT, TRACEPARENT), ("00-zz", None), ("", None)]
)
def test_the_acceptance_deadline_keeps_the_context_of_the_order_placed_that_set_it(
    given: str, kept: str | None
) -> None:
    from sqlalchemy import create_engine, select

    from shop import readmodel
    from shop.tables import acceptance_deadlines
    from shop.tables import metadata as shop_tables
    from tests.unit.test_event_contracts import placed_by_the_shop

    engine = create_engine("sqlite://")
    shop_tables.create_all(engine)
    placed = replace(placed_by_the_shop(), traceparent=given)
    with engine.begin() as conn:
        readmodel.apply(conn, placed, live=True)
        stored = conn.execute(select(acceptance_deadlines.c.traceparent)).scalar_one()
    engine.dispose()
    assert stored == kept
