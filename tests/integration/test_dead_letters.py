"""Poison and exhausted messages are parked, shown on the order, replayed once, discarded."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from celery import Celery
from celery.signals import task_postrun
from flask.testing import FlaskClient
from sqlalchemy import func, select

from shop.sealing import Sealer
from shop.validation import Card
from tests.support.shop import FAILING_CARD, GOOD_CARD, order_body, wait_for
from workers.messaging import deadletters
from workers.messaging.contracts import wire_type
from workers.messaging.database import engine_for
from workers.messaging.deadletters import DeadLetter
from workers.messaging.envelope import Envelope, event_type
from workers.messaging.tables import inbox
from workers.operations import dlq

pytestmark = pytest.mark.usefixtures("worker")

SUBSCRIBERS = (
    "orders.on_order_placed",
    "payments.on_payment_requested",
    "shipping.on_shipment_requested",
    "shop.on_order_status_changed",
)


def letter_for(event_id: str, timeout_s: float = 30) -> DeadLetter:
    def probe() -> DeadLetter | None:
        found = [letter for letter in dlq.list_letters(status=None) if letter.event_id == event_id]
        return found[0] if found else None

    return wait_for(probe, timeout_s=timeout_s)


def not_an_envelope(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "hello": "this is no CloudEvent"}


def unknown_type(event_id: str) -> dict[str, Any]:
    order_id = str(uuid.uuid4())
    return Envelope(
        type=event_type("order.exploded"), source="/tests", subject=order_id, data={}, id=event_id
    ).to_dict()


def payment_request(event_id: str, **data: Any) -> dict[str, Any]:
    order_id = str(uuid.uuid4())
    fields = {"order_id": order_id, "payment_id": str(uuid.uuid4()), "currency": "EUR", **data}
    return Envelope(
        type=event_type("payment.requested"),
        source="/orders",
        subject=order_id,
        data=fields,
        id=event_id,
        correlationid=order_id,
    ).to_dict()


@pytest.mark.parametrize("task", SUBSCRIBERS)
@pytest.mark.parametrize(
    "poison", [not_an_envelope, unknown_type], ids=["not-an-event", "unknown-type"]
)
def test_a_poison_message_is_parked_at_once_without_retries(
    celery_app: Celery, task: str, poison: Any
) -> None:
    event_id = str(uuid.uuid4())

    celery_app.send_task(task, args=[poison(event_id)], queue=task.split(".")[0])

    letter = letter_for(event_id)
    assert (letter.task, letter.queue, letter.status) == (task, task.split(".")[0], "parked")
    assert letter.attempts == 1
    assert letter.exception in ("InvalidEvent", "UnknownEventType")
    assert "Traceback" in letter.traceback


def test_a_payment_request_without_an_amount_is_parked_as_a_schema_violation(
    celery_app: Celery,
) -> None:
    event_id = str(uuid.uuid4())
    body = payment_request(event_id, token="t")

    celery_app.send_task("payments.on_payment_requested", args=[body], queue="payments")

    letter = letter_for(event_id)
    assert (letter.exception, letter.attempts) == ("InvalidEvent", 1)
    assert "amount_cents" in letter.message


def test_orders_keep_flowing_while_poison_sits_on_every_queue(
    celery_app: Celery, client: FlaskClient
) -> None:
    for task in SUBSCRIBERS:
        celery_app.send_task(task, args=["not even an object"], queue=task.split(".")[0])

    order_id = client.post("/api/orders", json=order_body(sku="RUN-002")).get_json()["id"]

    shipped = wait_for(
        lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED"
    )
    assert shipped


def test_a_card_that_always_fails_is_parked_after_its_retries_and_the_order_says_so(
    client: FlaskClient,
) -> None:
    order_id = client.post("/api/orders", json=order_body(card=FAILING_CARD)).get_json()["id"]

    letters = wait_for(lambda: dlq.parked(subject=order_id), timeout_s=60)

    [letter] = letters
    assert letter.task == "payments.on_payment_requested"
    assert letter.exception == "GatewayUnavailable"
    assert letter.attempts == 5  # the first try and SHOESHOP_MAX_RETRIES=4 retries
    # The first failure is the first attempt's, carried through the retries: their backoffs
    # (FAST_RETRIES: at least 0.025 + 0.05 + 0.1 + 0.2 s) lie between it and the last.
    assert (letter.last_failed_at - letter.first_failed_at).total_seconds() >= 0.375
    # The shop hears of it (message.parked, written with the letter) and keeps it in its view.
    delayed = wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["delayed"])
    assert delayed == {"since": letter.first_failed_at.isoformat(), "stage": "payment"}


def test_an_order_with_nothing_parked_is_not_delayed(client: FlaskClient) -> None:
    order_id = client.post("/api/orders", json=order_body()).get_json()["id"]

    assert client.get(f"/api/orders/{order_id}").get_json()["delayed"] is None


def test_parking_the_same_event_again_adds_up_its_attempts_on_one_row() -> None:
    body = payment_request(str(uuid.uuid4()), amount_cents=100, token="t")
    first = deadletters.park("payments.on_payment_requested", body, RuntimeError("one"), 5)
    before = dlq.get(first)

    again = deadletters.park("payments.on_payment_requested", body, RuntimeError("two"), 5)

    after = dlq.get(again)
    assert again == first
    assert (after.attempts, after.message, after.status) == (10, "two", "parked")
    assert after.first_failed_at == before.first_failed_at
    assert after.last_failed_at >= before.last_failed_at


def test_workers_parking_one_event_at_the_same_moment_make_one_row() -> None:
    body = payment_request(str(uuid.uuid4()), amount_cents=100, token="t")
    parkers = 8
    start = threading.Barrier(parkers)
    ids: list[str] = []

    def park_at_once() -> None:
        start.wait()
        ids.append(deadletters.park("payments.on_payment_requested", body, RuntimeError("x"), 1))

    threads = [threading.Thread(target=park_at_once) for _ in range(parkers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    rows = [letter for letter in dlq.list_letters(status=None) if letter.event_id == body["id"]]
    assert len(set(ids)) == 1 and len(rows) == 1
    assert rows[0].attempts == parkers


@contextmanager
def runs_of(event_id: str) -> Iterator[list[str]]:
    """Every finished task run that was handed this event."""
    finished: list[str] = []
    lock = threading.Lock()

    def record(sender: Any = None, args: Any = None, **_: Any) -> None:
        if args and isinstance(args[0], dict) and args[0].get("id") == event_id:
            with lock:
                finished.append(str(getattr(sender, "name", "")))

    task_postrun.connect(record, weak=False)
    try:
        yield finished
    finally:
        task_postrun.disconnect(record)


def test_replaying_a_parked_payment_twice_charges_once(
    celery_app: Celery, gateway_url: str
) -> None:
    token = Sealer(gateway_url).seal(Card(GOOD_CARD, 12, 2031, "123"))
    event = payment_request(str(uuid.uuid4()), amount_cents=4200, token=token)
    order_id = event["subject"]
    letter_id = deadletters.park(
        "payments.on_payment_requested", event, RuntimeError("the gateway was down"), 5
    )

    with runs_of(event["id"]) as runs:
        first = dlq.replay(celery_app, letter_id)
        second = dlq.replay(celery_app, letter_id)
        wait_for(lambda: len(runs) == 2)

    assert (first.outcome, second.outcome) == ("sent", "sent")
    charges = httpx.get(f"{gateway_url}/v1/charges", params={"order_id": order_id}).json()
    assert [charge["amount_cents"] for charge in charges] == [4200]
    with engine_for("payments").connect() as conn:
        applied = conn.execute(
            select(func.count()).select_from(inbox).where(inbox.c.event_id == event["id"])
        ).scalar_one()
    assert applied == 1
    assert dlq.get(letter_id).status == "replayed"
    assert [a.outcome for a in dlq.actions(letter_id)] == ["sent", "sent"]


def test_discarding_a_letter_changes_its_status_and_logs_the_action() -> None:
    letter_id = deadletters.park("orders.on_order_placed", "junk", ValueError("junk"), 1)

    action = dlq.discard(letter_id)

    assert dlq.get(letter_id).status == "discarded"
    assert [(a.action, a.outcome) for a in dlq.actions(letter_id)] == [("discard", "discarded")]
    assert action.ok


def test_a_discarded_or_eventless_letter_is_not_replayed(celery_app: Celery) -> None:
    letter_id = deadletters.park("orders.on_order_placed", "junk", ValueError("junk"), 1)

    action = dlq.replay(celery_app, letter_id)

    assert not action.ok and action.outcome.startswith("failed")
    assert dlq.get(letter_id).status == "parked"


def test_a_bug_in_a_handler_is_parked_at_once_with_its_traceback(
    celery_app: Celery, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a handler with a bug: it reads a key the data does not have
    def on_shipment_requested(*_: Any) -> None:
        raise KeyError("parcel_size")

    task = celery_app.tasks["shipping.on_shipment_requested"]
    monkeypatch.setattr(type(task), "handler", staticmethod(on_shipment_requested))
    # When an order reaches shipping
    order_id = client.post("/api/orders", json=order_body(sku="TRL-002")).get_json()["id"]
    # Then the message is parked at its first attempt, never retried: no retry would fix a bug
    [letter] = wait_for(lambda: dlq.parked(subject=order_id), timeout_s=60)
    assert (letter.task, letter.exception, letter.attempts) == (
        "shipping.on_shipment_requested",
        "KeyError",
        1,
    )
    assert "raise KeyError" in letter.traceback


@pytest.mark.parametrize(
    ("subject", "reason"),
    [("\ud800", None), ("a\x00b", None), ("s" * 200, None), (None, "late\x00\ud800")],
    ids=["lone surrogate subject", "NUL subject", "long subject", "NUL and surrogate in data"],
)
def test_an_envelope_no_database_could_store_is_parked_at_once_whole(
    celery_app: Celery, subject: str | None, reason: str | None
) -> None:
    # Given an order.status_changed whose envelope or data holds what PostgreSQL or UTF-8 cannot
    # store (a worker must neither apply it nor fail to park it: either would lose it)
    event_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = Envelope(
        type=wire_type("order.status_changed"),
        source="/orders",
        subject=subject or order_id,
        data={"order_id": order_id, "status": "CANCELLED", "reason": reason or "payment_timeout"},
        id=event_id,
    ).to_dict()

    celery_app.send_task("shop.on_order_status_changed", args=[body], queue="shop")

    letter = letter_for(event_id)
    assert (letter.exception, letter.attempts, letter.status) == ("InvalidEvent", 1, "parked")
    # What was received is kept, escaped where no database could hold it as it was.
    kept = letter.event if letter.event is not None else json.loads(letter.raw or "null")
    assert kept == body


@pytest.mark.parametrize("odd", [float("nan"), float("inf")], ids=["NaN", "Infinity"])
def test_a_message_with_a_number_json_has_not_is_parked_not_lost(
    celery_app: Celery, odd: float
) -> None:
    # Celery's JSON reads NaN and Infinity; PostgreSQL's json refuses them, and no JSON reader
    # after it would take them back: the body is kept as text instead.
    event_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = Envelope(
        type=wire_type("order.status_changed"),
        source="/orders",
        subject=order_id,
        data={"order_id": order_id, "status": "BOGUS", "reason": None, "x": odd},
        id=event_id,
    ).to_dict()

    celery_app.send_task("shop.on_order_status_changed", args=[body], queue="shop")

    letter = letter_for(event_id)
    assert (letter.exception, letter.attempts, letter.event) == ("InvalidEvent", 1, None)
    assert letter.raw is not None and ("NaN" in letter.raw or "Infinity" in letter.raw)
    assert json.loads(letter.raw.replace("NaN", "0").replace("Infinity", "0"))["id"] == event_id
