"""Orders past their deadline, on /metrics (issue #19).

No beat runs here, so no timer sweeps by itself: an order left past its status deadline stays
there. /metrics counts it once its deadline is more than DEADLINE_GRACE past, not before, and
the count falls to 0 once the timer's sweep has run. The deadline is shortened by its setting
and the scrape's clock moved (the clock is the one fake allowed); orders other tests left
waiting are swept out of the window first, so the counts are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from celery import Celery
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table, select

from shop import acceptance, checkout
from shop.tables import acceptance_deadlines
from tests.support.integration import order, place
from tests.support.shop import FAILING_CARD, wait_for
from workers.messaging.database import engine_for
from workers.messaging.envelope import as_utc, utcnow
from workers.operations import metrics as operations_metrics
from workers.operations.metrics import DEADLINE_GRACE
from workers.operations.relay import relay_once
from workers.orders import store, timer

pytestmark = pytest.mark.usefixtures("worker")

SECOND = timedelta(seconds=1)
# Further than any order of this test reaches its deadline plus the grace: what is due before
# then, other tests' leftovers, is swept before the test begins.
WINDOW = DEADLINE_GRACE + timedelta(seconds=60)

Clock = Callable[[datetime], None]


@pytest.fixture
def scrape_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Sets the time /metrics reads the deadlines at."""

    def at(when: datetime) -> None:
        monkeypatch.setattr(operations_metrics, "utcnow", lambda: when)

    return at


def past_deadline(client: FlaskClient, component: str) -> tuple[float, float]:
    """The component's timer in one scrape: (orders past their deadline, oldest's age in s)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.labels.get("component") == component
    }
    return (
        found["shoeshop_orders_past_deadline"],
        found["shoeshop_orders_past_deadline_oldest_age_seconds"],
    )


def due_at(component: str, table: Table, order_id: str) -> datetime:
    """When the order's deadline in the component's timer table falls due."""
    with engine_for(component).connect() as conn:
        due = conn.execute(select(table.c.due_at).where(table.c.order_id == order_id)).scalar_one()
    return as_utc(due)


def test_an_unpaid_order_past_its_deadline_shows_until_the_timer_cancels_it(
    client: FlaskClient,
    celery_app: Celery,
    setting: Callable[[str, str], None],
    scrape_clock: Clock,
) -> None:
    setting("SHOESHOP_PAYMENT_TIMEOUT", "1")
    horizon = utcnow() + WINDOW
    timer.sweep(celery_app, horizon)
    order_id = place(client, card=FAILING_CARD, sku="BOT-002", size="44")
    wait_for(lambda: order(client, order_id)["delayed"], timeout_s=60)  # its payment parked
    due = due_at("orders", store.deadlines, order_id)
    assert due + DEADLINE_GRACE + SECOND < horizon

    scrape_clock(due + DEADLINE_GRACE - 5 * SECOND)
    assert past_deadline(client, "orders") == (0, 0)  # past its deadline, within the grace
    scrape_clock(due + DEADLINE_GRACE + SECOND)
    count, oldest_s = past_deadline(client, "orders")
    assert count == 1
    assert oldest_s == pytest.approx((DEADLINE_GRACE + SECOND).total_seconds())

    timer.sweep(celery_app, due + DEADLINE_GRACE + SECOND)

    assert past_deadline(client, "orders") == (0, 0)
    cancelled = wait_for(lambda: (o := order(client, order_id))["status"] == "CANCELLED" and o)
    assert cancelled["reason"] == "payment_timeout"


def test_an_order_not_taken_up_past_its_acceptance_deadline_shows_until_the_shop_cancels_it(
    client: FlaskClient,
    celery_app: Celery,
    setting: Callable[[str, str], None],
    scrape_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setting("SHOESHOP_ACCEPT_TIMEOUT", "1")
    horizon = utcnow() + WINDOW
    acceptance.sweep(celery_app, horizon)
    with monkeypatch.context() as held:
        # The shop could not publish it: its order.placed waits in the outbox for the relay,
        # which does not run here, so orders never takes it up.
        held.setattr(checkout, "publish_committed", lambda *_args: False)
        order_id = place(client, sku="BOT-002", size="45")
    due = due_at("shop", acceptance_deadlines, order_id)
    assert due + DEADLINE_GRACE + SECOND < horizon

    scrape_clock(due + DEADLINE_GRACE - 5 * SECOND)
    assert past_deadline(client, "shop") == (0, 0)
    scrape_clock(due + DEADLINE_GRACE + SECOND)
    assert past_deadline(client, "shop")[0] == 1

    assert acceptance.sweep(celery_app, due + DEADLINE_GRACE + SECOND) == 1

    assert past_deadline(client, "shop") == (0, 0)
    cancelled = wait_for(lambda: (o := order(client, order_id))["status"] == "CANCELLED" and o)
    assert cancelled["reason"] == "not_accepted"
    # The order.placed it held goes out after all (orders records it as ignored), leaving the
    # shop's outbox as the other tests expect it.
    assert relay_once(celery_app, "shop", grace=timedelta(0)) >= 1
