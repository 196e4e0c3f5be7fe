"""Which of RabbitMQ's dead letters the drain parks: everything but beat's expired nudges."""

from __future__ import annotations

from typing import Any

import pytest
from kombu.message import Message

from config.celery import app
from workers.operations.broker_drain import beat_tasks, expired_nudge


def dead(task: str, *reasons: str) -> Message:
    """A message as ``shoeshop.dead`` holds it: Celery's task header, RabbitMQ's x-death."""
    deaths: list[dict[str, Any]] = [{"reason": reason, "queue": "shipping"} for reason in reasons]
    return Message(body=b"[[], {}, {}]", headers={"task": task, "x-death": deaths})


def test_the_nudges_are_the_tasks_of_beat_s_schedule() -> None:
    nudges = beat_tasks(app)
    assert {"orders.sweep_payment_deadlines", "shop.sweep_acceptance_deadlines"} <= nudges
    assert not any(name.endswith(".on_order_placed") for name in nudges)


@pytest.mark.parametrize(
    ("task", "reasons", "dropped"),
    [
        ("orders.sweep_payment_deadlines", ("expired",), True),
        ("orders.sweep_payment_deadlines", ("expired", "expired"), True),
        ("orders.sweep_payment_deadlines", ("rejected",), False),  # a worker refused it: a bug
        ("orders.sweep_payment_deadlines", ("expired", "delivery_limit"), False),
        ("orders.sweep_payment_deadlines", (), False),
        ("orders.on_order_placed", ("expired",), False),  # an event is never dropped
    ],
)
def test_only_a_nudge_that_merely_expired_is_dropped(
    task: str, reasons: tuple[str, ...], dropped: bool
) -> None:
    assert expired_nudge(dead(task, *reasons), beat_tasks(app)) is dropped
