"""A subscriber's Interest narrows what it is sent (issue #20: no message a subscriber does not
need): notifications hears only the status changes it writes a mail for."""

from __future__ import annotations

import typing
import uuid

import pytest

from workers.messaging.contracts import OrderStatus, OrderStatusChanged, new_event
from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import (
    INTEREST_FIELDS,
    INTERESTS,
    SUBSCRIPTIONS,
    UNMAILED_STATUSES,
    recipients,
    subscribers_of,
)
from workers.notifications.handlers import tell_status

SHOP, NOTIFY = "shop.on_order_status_changed", "notifications.on_order_status_changed"


def notice(status: str) -> Envelope:
    order_id = str(uuid.uuid4())
    return new_event(
        OrderStatusChanged(order_id=order_id, status=status, reason=None),  # type: ignore[arg-type]
        source="/orders",
        subject=order_id,
    )


@pytest.mark.parametrize("status", sorted(UNMAILED_STATUSES))
def test_a_status_notifications_writes_no_mail_for_goes_to_the_shop_only(status: str) -> None:
    assert recipients(notice(status)) == (SHOP,)


@pytest.mark.parametrize("status", ["SHIPPED", "CANCELLED"])
def test_a_shipped_or_cancelled_order_is_told_to_both(status: str) -> None:
    assert recipients(notice(status)) == (SHOP, NOTIFY)


def test_an_old_version_is_read_in_the_current_one_before_it_is_narrowed() -> None:
    order_id = str(uuid.uuid4())
    data = {"order_id": order_id, "status": "PAID", "reason": None}
    old = Envelope(
        type="shoeshop.order.status_changed.v1",
        source="/orders",
        subject=order_id,
        data=data,
    )
    assert recipients(old) == (SHOP,)


@pytest.mark.parametrize(
    "data",
    [{"order_id": "x"}, {"status": "REFUNDED"}, {"status": ["PAID"]}, {"status": None}],
)
def test_what_an_interest_cannot_judge_goes_to_every_subscriber(data: dict[str, object]) -> None:
    # Nothing is dropped on a guess: the subscriber's contract parks what is invalid.
    event = Envelope(type=OrderStatusChanged.TYPE, source="/orders", subject="x", data=data)
    assert recipients(event) == subscribers_of(event.type)


def test_an_event_without_an_interest_goes_to_all_of_its_subscribers() -> None:
    for type_, tasks in SUBSCRIPTIONS.items():
        if not any(task in INTERESTS for task in tasks):
            event = Envelope(type=type_, source="/x", subject="x", data={})
            assert recipients(event) == tasks


def test_notifications_interest_is_exactly_the_statuses_it_writes_a_mail_for() -> None:
    statuses = set(typing.get_args(OrderStatus))
    mailed = {"SHIPPED", "CANCELLED"}
    assert UNMAILED_STATUSES | mailed == statuses and not UNMAILED_STATUSES & mailed
    # Its handler writes nothing for the others, before it reads anything
    for status in UNMAILED_STATUSES:
        assert tell_status(notice(status)) is None


def test_every_interest_is_a_subscription_and_the_sweep_reads_its_field() -> None:
    for task, interest in INTERESTS.items():
        types = [type_ for type_, tasks in SUBSCRIPTIONS.items() if task in tasks]
        assert types, task
        assert all(INTEREST_FIELDS[type_] == interest.field for type_ in types)
