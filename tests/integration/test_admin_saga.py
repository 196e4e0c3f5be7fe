"""The operators' saga view (issue #12): one order's events joined across every component's
outbox and inbox, at /admin/orders/<id> and /api/admin/orders/<id>/saga; and the operations'
metrics (outbox backlogs, dead letters) that the admin blueprint adds to the shop's /metrics.

Orders go through the real flow: the API, the broker, an in-process worker, the gateway.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, select
from werkzeug.test import TestResponse

from tests.support.shop import FAILING_CARD, FLAKY_CARD, GOOD_CARD, order_body, wait_for
from workers.messaging import deadletters
from workers.messaging.contracts import wire_type
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import recipients
from workers.messaging.tables import outbox
from workers.operations import dlq, saga

pytestmark = pytest.mark.usefixtures("worker")

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}
SKU = "SAN-002"
# Ids no order can have: upper case, too long, a NUL at the end, not a UUID at all.
NOT_ORDER_IDS = [
    str(uuid.uuid4()).upper(),
    str(uuid.uuid4()) + "0",
    "00000000-0000-4000-8000-00000000000%00",
    "not-an-order",
]


def place(client: FlaskClient, card: str = GOOD_CARD) -> str:
    response = client.post("/api/orders", json=order_body(card=card, sku=SKU, size="40"))
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.get_json()["id"])


def shipped_saga(client: FlaskClient, order_id: str) -> list[dict[str, Any]]:
    """The order's saga once it has shipped and every event in it was applied by each of its
    subscribers."""
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")

    def settled() -> list[dict[str, Any]] | None:
        response = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN)
        timeline: list[dict[str, Any]] = response.get_json()["timeline"]
        every = all(len(event["consumers"]) == len(recipients_of(event)) for event in timeline)
        return timeline if every else None

    return wait_for(settled)


def recipients_of(entry: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a timeline entry's event was sent to, read from its writer's outbox (an
    Interest narrows some: notifications hears only the status changes it mails about)."""
    query = select(outbox.c.event).where(outbox.c.id == entry["id"])
    with engine_for(entry["component"]).connect() as conn:
        return recipients(Envelope.from_dict(conn.execute(query).scalar_one()))


def events_of(timeline: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in timeline if event["type"] == wire_type(name)]


def assert_api_error(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code


# --- the saga of an order -----------------------------------------------------------------------


def test_a_shipped_orders_saga_names_who_emitted_each_event_and_which_task_applied_it(
    client: FlaskClient,
) -> None:
    order_id = place(client)

    timeline = shipped_saga(client, order_id)
    response = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN)

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json()["order_id"] == order_id
    [placed] = events_of(timeline, "order.placed")
    assert placed == timeline[0]
    assert (placed["source"], placed["component"], placed["since_placed_s"]) == ("/shop", "shop", 0)
    assert {c["task"] for c in placed["consumers"]} == {
        "orders.on_order_placed",
        "notifications.on_order_placed",
    }
    [requested] = events_of(timeline, "payment.requested")
    assert (requested["source"], requested["component"]) == ("/orders", "orders")
    assert [c["task"] for c in requested["consumers"]] == ["payments.on_payment_requested"]
    [dispatched] = events_of(timeline, "shipment.dispatched")
    assert (dispatched["source"], dispatched["component"]) == ("/shipping", "shipping")
    assert [c["task"] for c in dispatched["consumers"]] == ["orders.on_shipment_dispatched"]
    assert events_of(timeline, "payment.succeeded")[0]["component"] == "payments"
    assert {
        c["task"] for e in events_of(timeline, "order.status_changed") for c in e["consumers"]
    } == {"shop.on_order_status_changed", "notifications.on_order_status_changed"}


def test_the_saga_is_in_time_order_and_counts_the_seconds_since_the_order_was_placed(
    client: FlaskClient,
) -> None:
    timeline = shipped_saga(client, place(client))

    times = [event["time"] for event in timeline]
    seconds = [event["since_placed_s"] for event in timeline]

    assert times == sorted(times) and len(set(event["id"] for event in timeline)) == len(times)
    assert seconds == sorted(seconds) and seconds[0] == 0 and seconds[-1] > 0
    assert all(time.endswith("+00:00") for time in times)
    consumers = [consumer for event in timeline for consumer in event["consumers"]]
    assert all(c["retries"] == c["attempts"] - 1 and c["attempts"] >= 1 for c in consumers)
    assert all(c["applied_at"].endswith("+00:00") for c in consumers)


def test_a_payment_that_failed_twice_shows_it_was_applied_on_the_third_attempt(
    client: FlaskClient,
) -> None:
    timeline = shipped_saga(client, place(client, card=FLAKY_CARD))

    [requested] = events_of(timeline, "payment.requested")

    assert requested["consumers"][0]["task"] == "payments.on_payment_requested"
    assert (requested["consumers"][0]["attempts"], requested["consumers"][0]["retries"]) == (3, 2)


def test_the_saga_page_shows_the_order_each_event_and_the_tasks_that_applied_them(
    client: FlaskClient,
) -> None:
    order_id = place(client)
    timeline = shipped_saga(client, order_id)

    response = client.get(f"/admin/orders/{order_id}", headers=ADMIN)

    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert f'<code id="order-id">{order_id}</code>' in page
    for event in timeline:
        assert f'data-type="{event["type"]}" data-id="{event["id"]}"' in page
        assert all(f"<code>{c['task']}</code>: attempt" in page for c in event["consumers"])
    assert page.index(wire_type("order.placed")) < page.index(wire_type("shipment.dispatched"))


# --- what is no order, and who may look ---------------------------------------------------------


def test_an_order_no_component_knows_is_a_404_in_the_api_and_on_the_page(
    client: FlaskClient,
) -> None:
    order_id = str(uuid.uuid4())

    api = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN)
    page = client.get(f"/admin/orders/{order_id}", headers=ADMIN)

    assert_api_error(api, 404, "not_found")
    assert page.status_code == 404 and 'id="no-saga"' in page.get_data(as_text=True)


@pytest.mark.parametrize("order_id", NOT_ORDER_IDS)
def test_what_is_no_orders_id_is_a_404_before_any_database_is_asked(
    client: FlaskClient, order_id: str
) -> None:
    api = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN)
    page = client.get(f"/admin/orders/{order_id}", headers=ADMIN)

    assert_api_error(api, 404, "not_found")
    assert page.status_code == 404 and 'id="no-saga"' not in page.get_data(as_text=True)


def test_the_saga_needs_the_admin_password(client: FlaskClient) -> None:
    order_id = place(client)
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}

    for headers in ({}, wrong):
        api = client.get(f"/api/admin/orders/{order_id}/saga", headers=headers)
        page = client.get(f"/admin/orders/{order_id}", headers=headers)

        assert_api_error(api, 401, "unauthorized")
        assert page.status_code == 401 and order_id not in page.get_data(as_text=True)
        assert "WWW-Authenticate" in api.headers and "WWW-Authenticate" in page.headers


def test_the_dashboards_form_leads_to_an_orders_saga_and_refuses_what_is_no_id(
    client: FlaskClient,
) -> None:
    order_id = place(client)

    form = client.get("/admin", headers=ADMIN).get_data(as_text=True)
    found = client.get(f"/admin/orders?order_id=+{order_id.upper()}+", headers=ADMIN)
    refused = client.get("/admin/orders?order_id=12345", headers=ADMIN)

    assert 'action="/admin/orders"' in form and 'name="order_id"' in form
    assert found.status_code == 303 and found.headers["Location"] == f"/admin/orders/{order_id}"
    assert refused.status_code == 422 and 'role="alert"' in refused.get_data(as_text=True)


# --- a database that is away --------------------------------------------------------------------


@pytest.fixture
def payments_database_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The saga's reads of the payments database go to a real SQLite engine on a file that
    cannot be opened (its folder does not exist), as an unreachable broker is a real app."""
    away: Engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'payments.db'}")
    real = saga.engine_for

    def engine_for(component: str) -> Engine:
        return away if component == "payments" else real(component)

    monkeypatch.setattr(saga, "engine_for", engine_for)
    yield
    away.dispose()


@pytest.mark.usefixtures("payments_database_away")
def test_a_component_database_that_is_away_is_a_503_not_a_traceback(client: FlaskClient) -> None:
    order_id = str(uuid.uuid4())

    api = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN)
    page = client.get(f"/admin/orders/{order_id}", headers=ADMIN)

    assert_api_error(api, 503, "database_unavailable")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "did not answer" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


# --- from a dead letter to its order's saga -----------------------------------------------------


def test_a_parked_payment_links_its_letter_to_the_saga_which_shows_the_event_unapplied(
    client: FlaskClient,
) -> None:
    order_id = place(client, card=FAILING_CARD)
    [letter] = wait_for(lambda: dlq.parked(subject=order_id), timeout_s=60)

    letter_page = client.get(f"/admin/dead-letters/{letter.id}", headers=ADMIN)
    saga_page = client.get(f"/admin/orders/{order_id}", headers=ADMIN)
    timeline = client.get(f"/api/admin/orders/{order_id}/saga", headers=ADMIN).get_json()

    assert f'id="saga-link" href="/admin/orders/{order_id}"' in letter_page.get_data(as_text=True)
    assert saga_page.status_code == 200
    [requested] = events_of(timeline["timeline"], "payment.requested")
    assert requested["consumers"] == []  # parked: no payments task applied it
    assert "not applied yet" in saga_page.get_data(as_text=True)
    dlq.discard(letter.id)


def test_a_letter_about_no_order_has_no_saga_link(client: FlaskClient) -> None:
    letter_id = deadletters.park(
        "payments.on_payment_requested", ["no", "event"], ValueError("bad"), 1
    )

    page = client.get(f"/admin/dead-letters/{letter_id}", headers=ADMIN)

    assert page.status_code == 200 and 'id="saga-link"' not in page.get_data(as_text=True)
    dlq.discard(letter_id)


# --- the operations' metrics, added to the shop's /metrics by the admin blueprint ---------------


def parked_gauge(client: FlaskClient, queue: str) -> float | None:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shoeshop_dead_letters_parked" and sample.labels == {"queue": queue}:
                return sample.value
    return None


def test_the_dead_letters_gauge_counts_the_letters_parked_from_each_queue(
    client: FlaskClient,
) -> None:
    # A queue of its own, so that no other test's letters move its count.
    queue = f"test-{uuid.uuid4().hex[:8]}"
    letter_ids = [
        deadletters.park_rejected("payments.on_payment_requested", queue, [n], "{}", 1)
        for n in range(2)
    ]
    counted = parked_gauge(client, queue)

    dlq.discard(letter_ids[0])
    after_one_discard = parked_gauge(client, queue)
    dlq.discard(letter_ids[1])

    assert (counted, after_one_discard) == (2, 1)
    assert parked_gauge(client, "payments") is not None  # every component queue, even at 0
    assert parked_gauge(client, queue) is None
