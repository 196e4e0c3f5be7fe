"""Operators handle dead letters from the CLI, the admin pages and the admin JSON API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from urllib.parse import urlparse

import pytest
from celery import Celery
from click.testing import CliRunner
from flask.testing import FlaskClient

from config.settings import ConfigurationError, get_settings
from tests.support import stack
from tests.support.shop import order_body, wait_for
from workers.cli import main
from workers.messaging import broker_dead, deadletters
from workers.operations import broker_drain, dlq

pytestmark = pytest.mark.usefixtures("worker")

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}


def parked_letter() -> str:
    body = ["not", "an", "event", str(uuid.uuid4())]
    return deadletters.park("shipping.on_shipment_requested", body, ValueError("bad"), 1)


def test_the_cli_lists_shows_replays_and_discards_dead_letters() -> None:
    letter_id, runner = parked_letter(), CliRunner()

    listed = runner.invoke(main, ["dlq", "list", "--queue", "shipping", "--since", "1h", "--json"])
    shown = runner.invoke(main, ["dlq", "show", letter_id])
    replayed = runner.invoke(main, ["dlq", "replay", letter_id])
    discarded = runner.invoke(main, ["dlq", "discard", letter_id])

    assert listed.exit_code == 0, listed.output
    assert letter_id in [letter["id"] for letter in json.loads(listed.output)]
    assert shown.exit_code == 0 and "shipping.on_shipment_requested" in shown.output
    assert replayed.exit_code == 1 and "failed" in replayed.output  # not an event: nothing to send
    assert discarded.exit_code == 0 and "discarded" in discarded.output
    assert dlq.get(letter_id).status == "discarded"


def test_the_cli_says_so_for_an_unknown_id() -> None:
    result = CliRunner().invoke(main, ["dlq", "show", str(uuid.uuid4())])

    assert result.exit_code == 1 and "no dead letter" in result.output


def test_the_admin_pages_need_the_password(client: FlaskClient) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ops:guess").decode()}

    assert client.get("/admin").status_code == 401
    assert client.get("/admin/dead-letters", headers=wrong).status_code == 401
    assert client.get("/admin", headers=ADMIN).status_code == 200


def test_the_dashboard_shows_parked_letters_backlogs_and_queues(client: FlaskClient) -> None:
    parked_letter()

    page = client.get("/admin", headers=ADMIN).get_data(as_text=True)

    assert re.search(r'id="parked-count">[1-9]', page)
    assert "Outbox backlog" in page and "payments" in page and "unavailable" not in page


def test_the_dashboard_charts_the_orders_placed_in_the_last_minute(client: FlaskClient) -> None:
    def placed_last_minute() -> int:
        page = client.get("/admin", headers=ADMIN).get_data(as_text=True)
        found = re.search(r'id="placed-last-minute">(\d+)<', page)
        assert found is not None and 'id="throughput"' in page
        return int(found.group(1))

    before = placed_last_minute()
    response = client.post("/api/orders", json=order_body(sku="CRT-002", size="44"))
    assert response.status_code == 202

    # The minute may have turned between the two reads; then the new bucket holds just this one.
    assert placed_last_minute() in (before + 1, 1)


def test_a_discard_button_needs_its_csrf_token(client: FlaskClient) -> None:
    letter_id = parked_letter()
    page = client.get(f"/admin/dead-letters/{letter_id}", headers=ADMIN).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    url = f"/admin/dead-letters/{letter_id}/discard"

    refused = client.post(url, headers=ADMIN)
    done = client.post(url, headers=ADMIN, data={"csrf_token": token.group(1)})

    assert refused.status_code == 400
    assert done.status_code == 303
    assert dlq.get(letter_id).status == "discarded"


def test_the_json_api_lists_shows_and_acts_on_dead_letters(client: FlaskClient) -> None:
    letter_id = parked_letter()

    listed = client.get("/api/admin/dead-letters?queue=shipping", headers=ADMIN)
    shown = client.get(f"/api/admin/dead-letters/{letter_id}", headers=ADMIN)
    replay = client.post(f"/api/admin/dead-letters/{letter_id}/replay", headers=ADMIN, json={})
    discard = client.post(f"/api/admin/dead-letters/{letter_id}/discard", headers=ADMIN, json={})

    assert letter_id in [letter["id"] for letter in listed.get_json()]
    assert shown.get_json()["task"] == "shipping.on_shipment_requested"
    assert replay.status_code == 409 and replay.get_json()["error"]["code"] == "replay_failed"
    assert discard.status_code == 200 and discard.get_json()["outcome"] == "discarded"
    history = client.get(f"/api/admin/dead-letters/{letter_id}", headers=ADMIN).get_json()
    assert [a["action"] for a in history["actions"]] == ["replay", "discard"]


def test_the_json_api_answers_errors_in_the_error_shape(client: FlaskClient) -> None:
    anonymous = client.get("/api/admin/dead-letters")
    unknown = client.get(f"/api/admin/dead-letters/{uuid.uuid4()}", headers=ADMIN)
    bad_filter = client.get("/api/admin/dead-letters?status=lost", headers=ADMIN)
    form_post = client.post(f"/api/admin/dead-letters/{uuid.uuid4()}/discard", headers=ADMIN)

    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthorized"
    assert unknown.status_code == 404 and set(unknown.get_json()["error"]) == {
        "code",
        "message",
        "fields",
    }
    assert bad_filter.status_code == 422 and "status" in bad_filter.get_json()["error"]["fields"]
    assert form_post.status_code == 415


def test_production_refuses_the_default_admin_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from shop import create_app

    monkeypatch.setenv("SHOESHOP_ENV", "production")
    monkeypatch.setenv("SHOESHOP_SECRET_KEY", "a-real-secret")
    monkeypatch.delenv("SHOESHOP_ADMIN_PASSWORD", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="SHOESHOP_ADMIN_PASSWORD"):
            create_app({"TESTING": True})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


services_only = pytest.mark.skipif(
    stack.stack_name() != "services", reason="RabbitMQ queue arguments need the services stack"
)


@services_only
def test_component_queues_are_quorum_queues_with_a_delivery_limit_and_a_dead_letter_exchange(
    celery_app: Celery,
) -> None:
    vhost = urlparse(str(celery_app.conf.broker_url)).path.lstrip("/")

    command = ["rabbitmqctl", "-q", "--formatter", "json", "list_queues", "-p", vhost]
    listing = subprocess.run(
        [*command, "name", "arguments"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout

    queues = {queue["name"]: queue["arguments"] for queue in json.loads(listing)}
    raw = queues["orders"]
    # rabbitmqctl prints a table's entries as [key, type, value] (older: [key, value]).
    arguments = raw if isinstance(raw, dict) else {entry[0]: entry[-1] for entry in raw}
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-delivery-limit"] == broker_dead.DELIVERY_LIMIT
    assert arguments["x-dead-letter-exchange"] == broker_dead.DEAD_LETTER_EXCHANGE


@services_only
def test_a_message_the_broker_dead_letters_ends_in_the_same_store(celery_app: Celery) -> None:
    broker_drain.drain(celery_app)  # declares the dead-letter route before anything is rejected
    event = {"id": str(uuid.uuid4()), "for": "a task no worker knows"}

    # A worker rejects a message for an unknown task; RabbitMQ dead-letters it to shoeshop.dlx.
    celery_app.send_task("orders.no_such_task", args=[event], queue="orders")

    def parked() -> deadletters.DeadLetter | None:
        broker_drain.drain(celery_app)
        found = [x for x in dlq.list_letters() if x.event_id == event["id"]]
        return found[0] if found else None

    letter = wait_for(parked, timeout_s=30, every_s=0.5)
    assert (letter.exception, letter.task, letter.queue) == (
        "RejectedByBroker",
        "orders.no_such_task",
        "orders",
    )
    assert "rejected" in letter.message
