"""A message no task can even decode is parked with its raw body, not dropped."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery

from tests.support.integration import publish_raw
from tests.support.shop import wait_for
from workers.messaging import deadletters
from workers.operations import dlq

pytestmark = pytest.mark.usefixtures("worker")


def test_a_body_that_is_not_json_is_parked_with_its_queue_and_raw_bytes(celery_app: Celery) -> None:
    marker = f"not JSON {uuid.uuid4().hex}"
    body = b"\x80\x04 " + marker.encode() + b" {"
    publish_raw(celery_app, "orders.on_order_placed", "orders", body)

    def parked() -> deadletters.DeadLetter | None:
        return next((d for d in dlq.parked() if d.raw and marker in d.raw), None)

    letter = wait_for(parked, timeout_s=30)
    assert letter.task == deadletters.UNDECODABLE_TASK
    assert letter.queue == "orders"
    assert letter.attempts == 1
