"""One trace per order across every process (issue #19, traces).

The Procfile's processes run one by one with tracing on, every one exporting over OTLP/HTTP to a
receiver in the test; they are stopped with SIGTERM, so each exports what it still buffers. Four
orders: one that ships (the checkout path), one placed while the web cannot reach the broker (the
relay publishes its order.placed), one paid after two transient gateway failures (retries), and
one cancelled by its payment deadline (a card that never gets through). For each: all its spans
are in one trace; each ``process`` span's parent is the ``create`` span of its event; each
``create`` span lies inside the processing of the event its causationid names (or, for the
order.placed, inside the checkout's HTTP request). The span trees are printed (docs/operations.md,
*Traces*, shows one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import stack as stacks
from tests.support.otlp import Receiver, Span, tree
from tests.support.processes import ROOT, Processes, free_port
from tests.support.shop import FAILING_CARD, FLAKY_CARD, GOOD_CARD, order_body, wait_for
from workers.mailcatcher import start_in_thread as start_catcher

pytestmark = pytest.mark.timeout(600)

SHOP = ("gateway", "web", "shop", "orders", "payments", "shipping", "notifications", "relay")
TRACING = {
    # Exported every 200 ms rather than every 5 s: the test waits less for spans to arrive.
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}
SETTINGS = {
    "SHOESHOP_RETRY_BASE_DELAY": "0.2",
    "SHOESHOP_RETRY_MAX_DELAY": "2",
    "SHOESHOP_MAX_RETRIES": "5",
    "SHOESHOP_VISIBILITY_TIMEOUT": "15",
    "SHOESHOP_REDELIVER_AFTER": "20",
    # Past the flaky card's two retries, short enough for the deadline's order to be cancelled
    # within the test (beat sweeps every 10 s).
    "SHOESHOP_PAYMENT_TIMEOUT": "8",
    "SHOESHOP_ADMIN_PASSWORD": "traces",
}


@dataclass
class TracedShop:
    processes: Processes
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.processes.url("web")

    def place(self, card: str) -> str:
        answer = httpx.post(f"{self.url}/api/orders", json=order_body(card=card), timeout=30)
        assert answer.status_code == 202, answer.text
        order_id: str = answer.json()["id"]
        return order_id

    def wait_status(self, order_id: str, status: str, timeout_s: float = 60) -> None:
        def reached() -> bool | None:
            answer = httpx.get(f"{self.url}/api/orders/{order_id}", timeout=10)
            return (answer.status_code == 200 and answer.json()["status"] == status) or None

        wait_for(reached, timeout_s=timeout_s, every_s=0.3)


@pytest.fixture(params=["embedded", "services"])
def traced_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TracedShop]:
    if request.param == "services":
        if reason := stacks.services_missing():
            if stacks.services_required():
                pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)
        stack = stacks.start_services(tmp_path / "var")
    else:
        stack = stacks.start_embedded(tmp_path / "var")
    receiver = Receiver().start()
    catcher = start_catcher(tmp_path / "mail")
    own = ("SHOESHOP_", "OTEL_")
    plain = {key: value for key, value in os.environ.items() if not key.startswith(own)}
    env = {**plain, **stack.env, **SETTINGS, "SHOESHOP_SMTP_URL": catcher.url}
    processes = Processes(env, tmp_path / "logs")
    try:
        _migrate_and_seed(processes.env)
        processes.env.update(TRACING, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url)
        processes.start_all(SHOP)
        processes.start("beat")
        yield TracedShop(processes, receiver)
    finally:
        processes.close()
        stack.close()
        catcher.stop()
        receiver.stop()


def _migrate_and_seed(env: dict[str, str]) -> None:
    """Every database migrated and the catalogue seeded once, before gunicorn forks two workers
    that would both seed it (tests/chaos/conftest.py says why)."""
    shoeshop = str(Path(sys.executable).parent / "shoeshop")
    for command in (
        [shoeshop, "db", "upgrade"],
        [sys.executable, "-c", "from shop import create_app; create_app()"],
    ):
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)


def place_while_the_web_cannot_publish(shop: TracedShop) -> str:
    """An order accepted by a web whose broker is unreachable: its order.placed waits in the
    shop's outbox until the relay publishes it. The web is then restarted as it was."""
    processes = shop.processes
    processes.stop("web")
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    processes.start("web", {"SHOESHOP_BROKER_URL": nowhere}, wait=False)
    wait_for(lambda: _healthy(shop.url), timeout_s=60, every_s=0.3)
    order_id = shop.place(GOOD_CARD)
    processes.stop("web")
    processes.overrides.pop("web")
    processes.start("web")
    return order_id


def _healthy(url: str) -> bool | None:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200 or None
    except httpx.HTTPError:
        return None


def test_each_order_is_one_trace_whose_spans_follow_its_events(traced_shop: TracedShop) -> None:
    # Given a shop whose every process exports its spans
    shop = traced_shop
    # When an order ships, one is paid after two transient failures, one runs out of time,
    started = time.monotonic()
    orders = {
        "checkout": shop.place(GOOD_CARD),
        "retry": shop.place(FLAKY_CARD),
        "deadline": shop.place(FAILING_CARD),
    }
    # and one is published by the relay
    orders["relay"] = place_while_the_web_cannot_publish(shop)
    for path in ("checkout", "retry", "relay"):
        shop.wait_status(orders[path], "SHIPPED")
    shop.wait_status(orders["deadline"], "CANCELLED", timeout_s=90)
    print(f"\nthe four orders ended in {time.monotonic() - started:.1f}s")
    # and every process is stopped with SIGTERM
    time.sleep(1)  # the last notices reach the shop and notifications
    leftovers = shop.processes.close()
    assert leftovers == [], f"processes outlived SIGTERM: {leftovers}"

    # Then each order's spans form one trace that follows its events
    spans = shop.receiver.received()
    for path, order_id in orders.items():
        trace = spans_of_order(spans, order_id)
        print(f"\n{path} (order {order_id}):\n{tree(trace)}")
        check_parents(trace, order_id)
    retried = [
        s for s in spans_of_order(spans, orders["retry"]) if s.name == "process payment.requested"
    ]
    assert sorted(s.attributes["shoeshop.attempt"] for s in retried) == [1, 2, 3]
    deadline = spans_of_order(spans, orders["deadline"])
    assert any(s.name == "process order.deadline_passed" for s in deadline)
    relayed = spans_of_order(spans, orders["relay"])
    assert {s.service for s in relayed} >= {"shoeshop-web", "shoeshop-orders", "shoeshop-shop"}


def spans_of_order(spans: list[Span], order_id: str) -> list[Span]:
    """Every span of the one trace that holds the order's messaging spans."""
    traces = {
        s.trace_id
        for s in spans
        if s.attributes.get("messaging.message.conversation_id") == order_id
    }
    assert len(traces) == 1, f"order {order_id}'s messaging spans are in {len(traces)} traces"
    (trace_id,) = traces
    return [s for s in spans if s.trace_id == trace_id]


def check_parents(trace: list[Span], order_id: str) -> None:
    """The parent rule: a process span's parent is its event's create span; a create span lies
    inside the processing of its cause (the checkout's request for order.placed)."""
    by_id = {s.span_id: s for s in trace}

    def ancestors(span: Span) -> Iterator[Span]:
        while span.parent_id:
            parent = by_id.get(span.parent_id)
            assert parent is not None, f"{span.name} [{span.service}]: its parent never arrived"
            yield parent
            span = parent

    processed = [s for s in trace if s.kind == "CONSUMER" and s.name.startswith("process ")]
    created = [s for s in trace if s.kind == "PRODUCER" and s.name.startswith("create ")]
    assert processed and created
    for span in processed:
        parent = by_id.get(span.parent_id)
        event = span.name.removeprefix("process ")
        assert parent is not None and parent.name == f"create {event}", (
            f"{span.name} [{span.service}] has parent {parent and parent.name}"
        )
        if "messaging.message.id" in parent.attributes:
            assert (
                parent.attributes["messaging.message.id"] == span.attributes["messaging.message.id"]
            )
    for span in created:
        cause = span.attributes.get("shoeshop.causationid")
        lineage = list(ancestors(span))
        if cause:
            assert any(
                a.kind == "CONSUMER" and a.attributes.get("messaging.message.id") == cause
                for a in lineage
            ), f"{span.name} [{span.service}] is not inside the processing of its cause {cause}"
        elif span.name == "create order.placed":
            assert lineage and lineage[-1].kind == "SERVER", "order.placed outside its checkout"
        else:  # a deadline's own event, or what a timer asks for: inside an earlier step
            assert lineage, f"{span.name} [{span.service}] starts a trace of its own"
    assert all(
        s.attributes.get("messaging.message.conversation_id", order_id) == order_id for s in trace
    )
