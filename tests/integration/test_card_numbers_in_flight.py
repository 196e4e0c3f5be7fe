"""Card numbers never travel in plain text: not in a message sent to the broker, not in a log."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.signals import before_task_publish
from flask.testing import FlaskClient

from tests.support.shop import (
    DECLINED_CARD,
    FAILING_CARD,
    FLAKY_CARD,
    GOOD_CARD,
    order_body,
    wait_for,
)
from workers.messaging import deadletters
from workers.messaging.contracts import wire_type
from workers.messaging.envelope import Envelope, event_type
from workers.operations import dlq

pytestmark = pytest.mark.usefixtures("worker")
CARDS = (GOOD_CARD, DECLINED_CARD, FLAKY_CARD, FAILING_CARD)


class Wiretap:
    """Every message the publishers hand to the broker, as the JSON that goes on the wire."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        wire = json.dumps({"task": sender, "headers": headers, "body": body}, default=str)
        with self._lock:
            self.messages.append(wire)


@pytest.fixture()
def wiretap() -> Iterator[Wiretap]:
    tap = Wiretap()
    before_task_publish.connect(tap, weak=False)
    try:
        yield tap
    finally:
        before_task_publish.disconnect(tap)


def settled(client: FlaskClient, order_id: str) -> bool:
    status = client.get(f"/api/orders/{order_id}").get_json()["status"]
    return status in ("SHIPPED", "CANCELLED") or bool(dlq.parked(subject=order_id))


def test_no_card_number_is_published_or_logged(
    client: FlaskClient, wiretap: Wiretap, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    order_ids = []
    for card in CARDS:
        response = client.post("/api/orders", json=order_body(card=card, sku="BOT-001"))
        assert response.status_code == 202, response.get_data(as_text=True)
        order_ids.append(response.get_json()["id"])
    for order_id in order_ids:
        wait_for(lambda oid=order_id: settled(client, oid), timeout_s=60)

    published = "\n".join(wiretap.messages)
    logged = caplog.text

    # The scan sees real traffic: every order's events went out, and the log talks about them.
    assert all(order_id in published for order_id in order_ids)
    assert all(order_id in logged for order_id in order_ids)
    for card in CARDS:
        assert card not in published
        assert card not in logged


def test_task_arguments_shown_to_flower_name_the_event_not_the_customer(
    client: FlaskClient, wiretap: Wiretap
) -> None:
    body = order_body(sku="BOT-001")
    response = client.post("/api/orders", json=body)
    assert response.status_code == 202
    order_id = response.get_json()["id"]
    wait_for(lambda: settled(client, order_id), timeout_s=60)

    shown = [
        json.loads(wire)["headers"]["argsrepr"]
        for wire in wiretap.messages
        if order_id in json.loads(wire)["headers"]["argsrepr"]
    ]
    assert any(wire_type("order.placed") in summary for summary in shown)
    assert any(wire_type("order.status_changed") in summary for summary in shown)
    for summary in shown:
        assert body["customer"]["email"] not in summary
        assert body["shipping_address"]["line1"] not in summary


def test_a_replayed_dead_letter_is_shown_to_flower_by_its_summary_too(
    client: FlaskClient, celery_app: Celery, wiretap: Wiretap
) -> None:
    body = order_body(sku="BOT-001")
    order_id = client.post("/api/orders", json=body).get_json()["id"]
    wait_for(lambda: settled(client, order_id), timeout_s=60)
    parked = Envelope(
        type=event_type("payment.declined"),
        source="/payments",
        subject=order_id,
        correlationid=order_id,
        data={"order_id": order_id, "payment_id": "parked", "reason": body["customer"]["email"]},
    )
    letter_id = deadletters.park(
        "orders.on_payment_declined", parked.to_dict(), ValueError("test"), 1
    )

    assert dlq.replay(celery_app, letter_id).outcome == "sent"

    # The event sent again to its task (the message.replayed for the shop names it too).
    sent = [json.loads(wire) for wire in wiretap.messages if parked.id in wire]
    replayed = [m for m in sent if m["headers"]["task"] == "orders.on_payment_declined"]
    assert replayed
    for message in replayed:
        summary = message["headers"]["argsrepr"]
        assert summary == f"[{parked.type} id={parked.id} order={order_id}]"
        assert body["customer"]["email"] not in summary


def test_a_retried_or_replayed_event_is_shown_to_flower_by_its_summary(
    client: FlaskClient, celery_app: Celery, wiretap: Wiretap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Celery builds a retry's argsrepr anew from the body (the sealed card at its third level),
    # and `shoeshop replay --to` sends without the publisher: both show the summary only.
    from workers.operations import replay

    order_id = client.post(
        "/api/orders", json=order_body(card=FLAKY_CARD, sku="BOT-001")
    ).get_json()["id"]
    wait_for(lambda: settled(client, order_id), timeout_s=60)
    # This order's history only: the whole of it would re-send every earlier test's failing
    # payments, retried (with random jitter) long after this test.
    everything = replay.history_for
    monkeypatch.setattr(
        replay,
        "history_for",
        lambda task: [event for event in everything(task) if event.subject == order_id],
    )
    assert replay.replay_to(celery_app, "payments.on_payment_requested") == 1
    wait_for(lambda: len(requests_for(wiretap, order_id)) >= 3, timeout_s=30)

    requests = requests_for(wiretap, order_id)
    summaries = {message["headers"]["argsrepr"] for message in requests}
    assert len(summaries) == 1 and next(iter(summaries)).endswith(f"order={order_id}]"), summaries
    assert all("token" in json.dumps(message["body"]) for message in requests)  # sealed, inside


def requests_for(wiretap: Wiretap, order_id: str) -> list[dict[str, Any]]:
    """The payment requests about the order sent so far: the first, its retries, the replay."""
    return [
        message
        for message in (json.loads(wire) for wire in wiretap.messages)
        if message["headers"]["task"] == "payments.on_payment_requested"
        and order_id in json.dumps(message["body"])
    ]
