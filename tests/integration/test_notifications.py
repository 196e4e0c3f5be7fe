"""The notifications component against a real SMTP server (the mail catcher), on each broker:
the mails with what they say, one mail per event, a crash between the server's acceptance and
the commit, and a mail server that is down, then back."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from sqlalchemy import select

from config.settings import get_settings
from tests.support.processes import Processes
from tests.support.shop import DECLINED_CARD, FLAKY_CARD, order_body, wait_for
from workers.mailcatcher import Catcher, RunningCatcher, serve, start_in_thread
from workers.messaging import contracts
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.publisher import send_to
from workers.messaging.tables import inbox
from workers.operations import dlq
from workers.orders import timer

pytestmark = pytest.mark.usefixtures("worker")

GOOD_PRICE = "€119.00"  # RUN-001
SUBJECTS = ("We have your order", "is on its way", "is cancelled", "Your refund")


def place(client: FlaskClient, name: str, email_address: str, **kwargs: Any) -> str:
    body = order_body(**kwargs)
    body["customer"] = {"name": name, "email": email_address}
    response = client.post("/api/orders", json=body)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def status_of(client: FlaskClient, order_id: str) -> str:
    return str(client.get(f"/api/orders/{order_id}").get_json()["status"])


def reaches(client: FlaskClient, order_id: str, status: str) -> None:
    wait_for(lambda: status_of(client, order_id) == status, timeout_s=30)


def mails_to(box: Catcher | RunningCatcher, address: str) -> list[EmailMessage]:
    catcher = box.catcher if isinstance(box, RunningCatcher) else box
    found = []
    for key in catcher.mailbox.iterkeys():
        raw = catcher.mailbox.get_bytes(key)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            found.append(message)
    # In the order a customer reads them, whatever second each was sent in.
    return sorted(
        found,
        key=lambda m: next(
            (rank for rank, words in enumerate(SUBJECTS) if words in str(m["Subject"])),
            len(SUBJECTS),
        ),
    )


def wait_for_mails(
    box: Catcher | RunningCatcher, address: str, count: int, timeout_s: float = 30
) -> list[EmailMessage]:
    return wait_for(lambda: len(found := mails_to(box, address)) >= count and found, timeout_s)


def mail_saying(box: Catcher | RunningCatcher, address: str, words: str) -> EmailMessage:
    """The first mail to ``address`` whose text part says ``words``, once it has come."""
    return wait_for(lambda: next((m for m in mails_to(box, address) if words in parts(m)[0]), None))


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def unique_address() -> str:
    return f"mail-{uuid.uuid4().hex[:12]}@example.com"


def test_a_shipped_order_gets_its_confirmation_and_its_shipping_notice(
    client: FlaskClient, catcher: RunningCatcher
) -> None:
    address = unique_address()
    order_id = place(client, "Zoë <b>O'Hara</b>", address, quantity=1)
    reaches(client, order_id, "SHIPPED")
    parcel = client.get(f"/api/orders/{order_id}").get_json()["shipment"]

    confirmation, notice = wait_for_mails(catcher, address, 2)

    link = f"{get_settings().public_url}/orders/{order_id}"
    assert link.startswith("http")
    assert str(confirmation["Subject"]) == f"We have your order {order_id[:8].upper()}"
    assert confirmation["Message-ID"] != notice["Message-ID"]
    text, html = parts(confirmation)
    assert "Zoë <b>O'Hara</b>" in text
    assert "Zoë &lt;b&gt;O&#x27;Hara&lt;/b&gt;" in html and "<b>O" not in html
    assert "Visa ending in 4242" in text and GOOD_PRICE in text
    assert link in text and f'href="{link}"' in html
    for content in (text, html):
        assert "4242424242424242" not in content and "424242424242" not in content

    text, html = parts(notice)
    assert str(notice["Subject"]) == f"Your order {order_id[:8].upper()} is on its way"
    assert parcel["carrier"] in text and parcel["tracking_number"] in text
    assert parcel["tracking_number"] in html and link in text
    assert len(mails_to(catcher, address)) == 2  # nothing more for PAYMENT_PENDING or PAID


def test_a_declined_card_gets_a_cancellation_that_says_why(
    client: FlaskClient, catcher: RunningCatcher
) -> None:
    address = unique_address()
    order_id = place(client, "Ada", address, card=DECLINED_CARD)
    reaches(client, order_id, "CANCELLED")

    _confirmation, cancellation = wait_for_mails(catcher, address, 2)

    text, _html = parts(cancellation)
    assert str(cancellation["Subject"]) == f"Your order {order_id[:8].upper()} is cancelled"
    assert "your card was declined" in text
    assert "Nothing was taken from your card" in text


def test_a_paid_order_cancelled_by_its_customer_gets_one_mail_with_the_refund(
    client: FlaskClient, catcher: RunningCatcher, setting: Any
) -> None:
    setting("SHOESHOP_PACKING_DELAY", "600")  # the parcel waits in packing: it can be stopped
    address = unique_address()
    order_id = place(client, "Ada", address)
    reaches(client, order_id, "PAID")
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202
    reaches(client, order_id, "CANCELLED")

    _confirmation, cancellation = wait_for_mails(catcher, address, 2)

    text, _html = parts(cancellation)
    assert "you asked us to cancel it" in text
    assert f"The {GOOD_PRICE} you paid is refunded to your Visa ending in 4242" in text


def test_a_payment_that_arrives_after_the_cancellation_gets_a_refund_mail_of_its_own(
    client: FlaskClient, catcher: RunningCatcher, celery_app: Celery, setting: Any
) -> None:
    # The flaky card pays on its third try, later (as in test_saga).
    setting("SHOESHOP_RETRY_MAX_DELAY", "3")
    setting("SHOESHOP_RETRY_BASE_DELAY", "1.5")
    address = unique_address()
    order_id = place(client, "Ada", address, card=FLAKY_CARD)
    reaches(client, order_id, "PAYMENT_PENDING")
    timer.sweep(celery_app, utcnow() + timedelta(seconds=get_settings().payment_timeout_s + 1))
    reaches(client, order_id, "CANCELLED")
    # Found by what they say: the refund's mail may come before the cancellation's is read.
    cancellation = mail_saying(catcher, address, "the payment did not arrive in time")
    assert "if one still arrives, we refund it" in parts(cancellation)[0]

    # The charge succeeds after all: orders refunds it, the customer hears of it.
    refund = mail_saying(catcher, address, "We have refunded")
    assert len(mails_to(catcher, address)) == 3  # the confirmation, the cancellation, the refund

    text, _html = parts(refund)
    assert str(refund["Subject"]) == f"Your refund for order {order_id[:8].upper()}"
    assert f"We have refunded {GOOD_PRICE} to your Visa ending in {FLAKY_CARD[-4:]}" in text


def order_placed(address: str) -> Envelope:
    order_id = str(uuid.uuid4())
    data = contracts.OrderPlaced(
        order_id=order_id,
        customer=contracts.Customer(name="Ada", email=address),
        shipping_address=contracts.Address(
            line1="Keizersgracht 1", city="Amsterdam", postal_code="1015 CJ", country="NL"
        ),
        items=[
            contracts.PricedItem(
                sku="RUN-001", name="Runner", size="42", quantity=1, unit_price_cents=12900
            )
        ],
        total_cents=12900,
        currency="EUR",
        payment=contracts.SealedCard(token="sealed", brand="visa", last4="4242"),
    )
    return contracts.new_event(data, source="/shop", subject=order_id)


def applied(event_id: str, consumer: str) -> bool:
    query = select(inbox.c.event_id).where(
        inbox.c.event_id == event_id, inbox.c.consumer == consumer
    )
    with engine_for("notifications").connect() as conn:
        return conn.execute(query).first() is not None


def test_an_event_delivered_twice_gives_one_mail(
    celery_app: Celery, catcher: RunningCatcher
) -> None:
    address = unique_address()
    event = order_placed(address)

    for _ in range(2):
        send_to(celery_app, "notifications.on_order_placed", event.to_dict())
    wait_for(lambda: applied(event.id, "notifications.on_order_placed"))
    wait_for_mails(catcher, address, 1)

    assert len(mails_to(catcher, address)) == 1
    assert str(mails_to(catcher, address)[0]["Message-ID"]).startswith(f"<{event.id}@")


def test_two_cancellation_notices_at_once_give_one_cancellation_mail(
    celery_app: Celery, catcher: RunningCatcher
) -> None:
    address = unique_address()
    placed = order_placed(address)
    send_to(celery_app, "notifications.on_order_placed", placed.to_dict())
    wait_for(lambda: applied(placed.id, "notifications.on_order_placed"))
    notices = [
        contracts.new_event(
            contracts.OrderStatusChanged(
                order_id=placed.subject, status="CANCELLED", reason="customer_request"
            ),
            source="/orders",
            cause=placed,
        )
        for _ in range(4)
    ]

    for notice in notices:  # four threads of the worker take them at once
        send_to(celery_app, "notifications.on_order_status_changed", notice.to_dict())
    for notice in notices:
        wait_for(lambda n=notice: applied(n.id, "notifications.on_order_status_changed"))

    cancellations = [m for m in mails_to(catcher, address) if "is cancelled" in str(m["Subject"])]
    assert len(cancellations) == 1


class KillingCatcher(Catcher):
    """A catcher that, on the first message to ``victim_address``, keeps it and then kills the
    worker that sent it before answering: the server has the mail, the worker never commits."""

    def __init__(self, directory: Path, victim_address: str, processes: Processes) -> None:
        super().__init__(directory)
        self.victim_address = victim_address
        self.processes = processes
        self.killed = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if not self.killed and self.victim_address in envelope.rcpt_tos:
            self.killed = True
            self.processes.running["notifications"].signal(signal.SIGKILL)
        return answer


@pytest.fixture
def notifications_paused(celery_app: Celery, worker: Any) -> Iterator[None]:
    """The in-process worker stops taking the notifications queue (through its remote control,
    so its own thread does it), and takes it again after the test."""
    replies = celery_app.control.cancel_consumer(
        "notifications", destination=[worker.hostname], reply=True
    )
    assert replies, "the in-process worker did not answer"
    yield
    celery_app.control.add_consumer("notifications", destination=[worker.hostname], reply=True)


@pytest.mark.usefixtures("notifications_paused")
def test_a_worker_killed_after_the_server_took_the_mail_sends_it_again_and_it_is_kept_once(
    celery_app: Celery, tmp_path: Path
) -> None:
    address = unique_address()
    event = order_placed(address)
    processes = Processes(env=dict(os.environ), log_dir=tmp_path / "logs")
    killer = KillingCatcher(tmp_path / "mail", address, processes)
    running = serve(killer)
    # Redis hands a killed worker's message on after the visibility timeout; RabbitMQ at once.
    smtp_env = {"SHOESHOP_SMTP_URL": running.url, "SHOESHOP_VISIBILITY_TIMEOUT": "6"}
    try:
        processes.start("notifications", env=smtp_env)
        send_to(celery_app, "notifications.on_order_placed", event.to_dict())
        wait_for(lambda: killer.killed and processes.exited(), timeout_s=60)
        assert not applied(event.id, "notifications.on_order_placed")

        processes.restart("notifications")
        wait_for(lambda: applied(event.id, "notifications.on_order_placed"), timeout_s=60)
    finally:
        processes.close()
        running.stop()

    assert killer.deliveries == 2  # sent before the kill, and again on redelivery
    assert killer.kept == 1  # the same Message-ID: the server keeps one
    assert len(mails_to(killer, address)) == 1


def test_a_mail_server_that_is_down_delays_the_mail_never_the_order(
    client: FlaskClient, celery_app: Celery, setting: Any, tmp_path: Path
) -> None:
    down = start_in_thread(tmp_path / "down")
    url = down.url
    down.stop()  # nothing listens there now
    setting("SHOESHOP_SMTP_URL", url)
    setting("SHOESHOP_MAX_RETRIES", "0")  # parked at the first refusal
    address = unique_address()

    order_id = place(client, "Ada", address)
    reaches(client, order_id, "SHIPPED")

    letters = wait_for(
        lambda: (
            [letter for letter in dlq.parked(order_id) if letter.task.startswith("notifications.")]
            if len(dlq.parked(order_id)) >= 2
            else None
        )
    )
    assert {letter.task for letter in letters} == {
        "notifications.on_order_placed",
        "notifications.on_order_status_changed",
    }
    assert all(letter.exception == "MailServerUnavailable" for letter in letters)
    order = client.get(f"/api/orders/{order_id}").get_json()
    assert order["status"] == "SHIPPED" and order["delayed"] is None

    back = start_in_thread(tmp_path / "back", port=int(url.rsplit(":", 1)[1]))
    try:
        for letter in letters:
            assert dlq.replay(celery_app, letter.id).outcome == "sent"
        confirmation, notice = wait_for_mails(back, address, 2)
    finally:
        back.stop()
    assert "We have your order" in str(confirmation["Subject"])
    assert "is on its way" in str(notice["Subject"])


def test_a_mail_server_that_comes_back_within_the_retries_gets_the_mail(
    client: FlaskClient, setting: Any, tmp_path: Path
) -> None:
    down = start_in_thread(tmp_path / "down")
    url = down.url
    down.stop()
    setting("SHOESHOP_SMTP_URL", url)
    setting("SHOESHOP_MAX_RETRIES", "8")
    setting("SHOESHOP_RETRY_MAX_DELAY", "1")
    address = unique_address()

    order_id = place(client, "Ada", address)
    reaches(client, order_id, "SHIPPED")  # the order does not wait for its mails
    back = start_in_thread(tmp_path / "back", port=int(url.rsplit(":", 1)[1]))
    try:
        confirmation, notice = wait_for_mails(back, address, 2)
    finally:
        back.stop()
    assert "We have your order" in str(confirmation["Subject"])
    assert "is on its way" in str(notice["Subject"])
    assert dlq.parked(order_id) == []
