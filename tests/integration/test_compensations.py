"""Compensations that fail (issue #19): a refund the gateway refuses for good, or a message giving
money or stock back that was parked, leaves the order needing an operator, who asks for the
refund again or closes it with a note; each command reaches orders as an event it records."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from celery import Celery
from click.testing import CliRunner
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.integration import charges, order, place
from tests.support.shop import DECLINED_CARD, wait_for
from workers.cli import main as shoeshop
from workers.gateway.cards import REFUND_REFUSED
from workers.messaging.database import engine_for, transaction
from workers.messaging.deadletters import parked_notice
from workers.messaging.envelope import utcnow
from workers.messaging.outbox import Outbox
from workers.messaging.publisher import publish
from workers.orders import store

pytestmark = pytest.mark.usefixtures("worker")

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}


def reaches(client: FlaskClient, order_id: str, status: str) -> dict[str, Any]:
    return wait_for(lambda: (o := order(client, order_id))["status"] == status and o)


def listed(client: FlaskClient) -> dict[str, dict[str, Any]]:
    """GET /api/admin/attention, by order id."""
    response = client.get("/api/admin/attention", headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["order_id"]: row for row in response.get_json()}


def needing_attention(client: FlaskClient, reason: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name == "shoeshop_orders_needing_attention" and labels == {"reason": reason}:
                return sample.value
    raise AssertionError("shoeshop_orders_needing_attention is not served")


def stream(order_id: str) -> list[str]:
    with engine_for("orders").connect() as conn:
        return [type(event).__name__ for event in store.load(conn, order_id)]


def refused_refund(client: FlaskClient, setting: Any) -> str:
    """A paid order, cancelled before its parcel left, whose card refuses refunds."""
    setting("SHOESHOP_PACKING_DELAY", "600")  # the parcel waits in packing
    order_id = place(client, card=REFUND_REFUSED, sku="SAN-002", size="41")
    reaches(client, order_id, "PAID")
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202
    return order_id


def operator(client: FlaskClient, order_id: str, action: str, note: str) -> Any:
    return client.post(
        f"/api/admin/attention/{order_id}", headers=ADMIN, json={"action": action, "note": note}
    )


def test_a_refused_refund_needs_an_operator_whose_retry_refunds_it_once(
    client: FlaskClient, gateway_url: str, gateway_simulator: Any, setting: Any
) -> None:
    before = needing_attention(client, "refund_failed")
    order_id = refused_refund(client, setting)

    # The order ends cancelled (its parcel stopped) and waits for an operator, seen everywhere.
    cancelled = reaches(client, order_id, "CANCELLED")
    assert cancelled["reason"] == "customer_request"
    row = wait_for(lambda: listed(client).get(order_id))
    assert (row["reason"], row["detail"]) == ("refund_failed", "expired_or_canceled_card")
    assert row["status"] == "CANCELLED"
    assert needing_attention(client, "refund_failed") == before + 1
    [charge] = charges(gateway_url, order_id)
    assert charge["status"] == "succeeded"  # the money is still the customer's to get back
    assert "RefundFailed" in stream(order_id)

    # A retry while the card still refuses is refused again: one attempt, no loop.
    assert operator(client, order_id, "retry_refund", "first try").status_code == 202
    wait_for(lambda: stream(order_id).count("RefundFailed") == 2)
    assert order_id in listed(client)

    # Once the issuer takes refunds, the operator's retry refunds it, once.
    gateway_simulator.allow_refunds(charge["id"])
    response = operator(client, order_id, "retry_refund", "the issuer reissued the card")
    assert response.status_code == 202 and set(response.get_json()) == {"event_id"}
    wait_for(lambda: order_id not in listed(client))
    assert [c["status"] for c in charges(gateway_url, order_id)] == ["refunded"]
    assert wait_for(lambda: order(client, order_id)["payment"]["status"] == "refunded")
    history = stream(order_id)
    assert history.count("OperatorActed") == 2 and history.count("PaymentRefunded") == 1
    assert needing_attention(client, "refund_failed") == before


def test_a_retry_of_a_refund_the_gateway_made_already_settles_the_order(
    client: FlaskClient, gateway_url: str, gateway_simulator: Any, setting: Any
) -> None:
    order_id = refused_refund(client, setting)
    wait_for(lambda: listed(client).get(order_id))
    [charge] = charges(gateway_url, order_id)
    # Meanwhile the money went back another way (an earlier request, or by hand at the gateway).
    gateway_simulator.allow_refunds(charge["id"])
    by_hand = httpx.post(
        f"{gateway_url}/v1/refunds",
        json={"charge_id": charge["id"]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert by_hand.status_code == 201

    # The gateway answers the retry "refunded already": that is a refund, not a refusal.
    assert operator(client, order_id, "retry_refund", "check again").status_code == 202
    wait_for(lambda: order_id not in listed(client))
    assert wait_for(lambda: order(client, order_id)["payment"]["status"] == "refunded")
    history = stream(order_id)
    assert history.count("PaymentRefunded") == 1 and history.count("RefundFailed") == 1
    assert [c["status"] for c in charges(gateway_url, order_id)] == ["refunded"]


def test_an_operator_closes_a_refused_refund_with_a_note_from_the_cli(
    client: FlaskClient, setting: Any
) -> None:
    order_id = refused_refund(client, setting)
    wait_for(lambda: listed(client).get(order_id))

    listing = CliRunner().invoke(shoeshop, ["attention", "list"])
    assert listing.exit_code == 0 and order_id in listing.output, listing.output
    note = "refunded by bank transfer, ticket 4711"
    closed = CliRunner().invoke(shoeshop, ["attention", "close", order_id, "--note", note])
    assert closed.exit_code == 0, closed.output

    wait_for(lambda: order_id not in listed(client))
    with engine_for("orders").connect() as conn:
        events = store.load(conn, order_id)
    assert [getattr(e, "note", None) for e in events if type(e).__name__ == "AttentionClosed"] == [
        note
    ]
    assert order(client, order_id)["status"] == "CANCELLED"


def test_a_parked_stock_release_of_a_cancelled_order_is_closed_from_the_admin_page(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, card=DECLINED_CARD, sku="SAN-001", size="42")
    reaches(client, order_id, "CANCELLED")
    # As operations writes it when the shop's message about the order is parked for good.
    notice = parked_notice({}, order_id, "shop", None, utcnow(), "retries_exhausted")
    assert notice is not None
    with transaction("operations") as conn:
        Outbox(conn).emit(notice)
    publish(celery_app, [notice])

    row = wait_for(lambda: listed(client).get(order_id))
    assert (row["reason"], row["detail"]) == ("message_parked", "shop")
    page = client.get("/admin/attention", headers=ADMIN).get_data(as_text=True)
    assert order_id in page and "message parked on the shop queue" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None

    # A note is required, at the field; nothing is sent without it.
    refused = client.post(
        f"/admin/attention/{order_id}",
        headers=ADMIN,
        data={"csrf_token": token.group(1), "action": "close", "note": "  "},
    )
    assert refused.status_code == 422
    assert "The note is required" in refused.get_data(as_text=True)
    assert "OperatorActed" not in stream(order_id)

    done = client.post(
        f"/admin/attention/{order_id}",
        headers=ADMIN,
        data={"csrf_token": token.group(1), "action": "close", "note": "stock counted by hand"},
    )
    assert done.status_code == 303
    wait_for(lambda: order_id not in listed(client))
    assert stream(order_id)[-2:] == ["OperatorActed", "AttentionClosed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "refund_twice", "note": "x"}, "action"),
        ({"action": "close", "note": ""}, "note"),
        ({"action": "close", "note": "two\nlines"}, "note"),
        ({"action": "close", "note": "x" * 501}, "note"),
        ({"action": "close"}, "note"),
        ({"action": 1, "note": "x"}, "action"),
    ],
)
def test_a_bad_command_is_refused_naming_its_field_and_sends_nothing(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    order_id = place(client, card=DECLINED_CARD)
    reaches(client, order_id, "CANCELLED")
    response = client.post(f"/api/admin/attention/{order_id}", headers=ADMIN, json=body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert set(response.get_json()["error"]["fields"]) == {field}
    assert "OperatorActed" not in stream(order_id)


def test_commands_need_the_password_a_json_body_and_an_order_id(client: FlaskClient) -> None:
    url = "/api/admin/attention/3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"
    assert client.post(url, json={"action": "close", "note": "x"}).status_code == 401
    assert client.post(url, headers=ADMIN, data="action=close").status_code == 415
    not_an_id = "/api/admin/attention/not-an-order"
    assert client.post(not_an_id, headers=ADMIN, json={}).status_code == 404
    cli = CliRunner().invoke(shoeshop, ["attention", "close", "not-an-order", "--note", "x"])
    assert cli.exit_code == 2 and "order_id" in cli.output


def test_a_command_about_an_order_needing_no_attention_or_unknown_is_refused_and_not_sent(
    client: FlaskClient,
) -> None:
    order_id = place(client, card=DECLINED_CARD)
    reaches(client, order_id, "CANCELLED")
    before = stream(order_id)

    refused = operator(client, order_id, "close", "by mistake")
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["code"] == "not_needing_attention"
    unknown = operator(client, "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11", "close", "a typo")
    assert unknown.status_code == 404
    cli = CliRunner().invoke(
        shoeshop, ["attention", "close", "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11", "--note", "x"]
    )
    assert cli.exit_code == 1 and "is no order the shop knows" in cli.output
    upper = CliRunner().invoke(shoeshop, ["attention", "close", order_id.upper(), "--note", "x"])
    assert upper.exit_code == 2 and "lower-case" in upper.output

    time.sleep(0.5)  # what was sent would be applied by now
    assert stream(order_id) == before
    assert order_id not in listed(client)
