"""Nothing an operator types fails further down (issue #11): a dead letter's id in a URL, the
list's filters (queue, status, since) and `shoeshop dlq list --since` are checked before any
database or datetime sees them. PostgreSQL refuses a NUL even in a lookup, and a time at the
ends of the calendar overflows once it is converted to UTC; run it on the services stack too.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from workers.cli import main
from workers.messaging import deadletters
from workers.operations import dlq

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}
# Ids no dead letter has, nor could: a NUL, a C1 control, an encoded lone surrogate, a UUID with
# a NUL at its end, one in upper case, one too long.
NOT_IDS = [
    "%00",
    "%C2%85",
    "%ED%A0%BD",
    "00000000-0000-4000-8000-00000000000%00",
    str(uuid.uuid4()).upper(),
    str(uuid.uuid4()) + "0",
]
# Times at the ends of the calendar (the year 0 or 10000 once in UTC) and ages reaching back
# before any datetime, from the review; then what is no time at all.
BAD_SINCE = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "99999999999d",
    "800000d",
    "1969-12-31T23:59:59Z",
    "\x00",
    "2h\x00",
    "٣d",
    "yesterday",
    "9" * 5000 + "d",
]


def parked_letter(task: str = "payments.on_order_placed") -> str:
    body = ["not", "an", "event", str(uuid.uuid4())]
    return deadletters.park(task, body, ValueError("bad"), 1)


def assert_api_error(response: TestResponse, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code
    fields: dict[str, str] = error["fields"]
    return fields


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/admin/dead-letters", headers=ADMIN).get_data(as_text=True)
    letter_id = re.search(r'data-id="([^"]+)"', page) or pytest.fail("no letter listed")
    page = client.get(f"/admin/dead-letters/{letter_id.group(1)}", headers=ADMIN)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found is not None
    return found.group(1)


# --- a dead letter's id -------------------------------------------------------------------------


@pytest.mark.parametrize("letter_id", NOT_IDS)
def test_an_id_no_dead_letter_can_have_is_a_404_in_the_apis_error_shape(
    client: FlaskClient, letter_id: str
) -> None:
    url = f"/api/admin/dead-letters/{letter_id}"

    assert_api_error(client.get(url, headers=ADMIN), 404, "not_found")
    for action in ("replay", "discard"):
        assert_api_error(client.post(f"{url}/{action}", headers=ADMIN, json={}), 404, "not_found")


@pytest.mark.parametrize("letter_id", NOT_IDS)
def test_an_id_no_dead_letter_can_have_is_the_html_404_page(
    client: FlaskClient, letter_id: str
) -> None:
    parked_letter()
    token = csrf_token(client)
    url = f"/admin/dead-letters/{letter_id}"

    page = client.get(url, headers=ADMIN)
    actions = [
        client.post(f"{url}/{action}", headers=ADMIN, data={"csrf_token": token})
        for action in ("replay", "discard")
    ]

    for response in (page, *actions):
        assert response.status_code == 404, response.get_data(as_text=True)
        assert response.mimetype == "text/html"


def test_a_well_formed_id_still_finds_its_letter_and_an_unknown_one_is_not_found(
    client: FlaskClient,
) -> None:
    letter_id = parked_letter()

    assert client.get(f"/api/admin/dead-letters/{letter_id}", headers=ADMIN).status_code == 200
    assert client.get(f"/admin/dead-letters/{letter_id}", headers=ADMIN).status_code == 200
    unknown = client.get(f"/admin/dead-letters/{uuid.uuid4()}", headers=ADMIN)
    assert unknown.status_code == 404 and "No dead letter has that id" in unknown.get_data(
        as_text=True
    )


def test_the_store_itself_finds_no_letter_for_what_is_no_id() -> None:
    # The CLI hands its argument on as typed: the store answers "not found" without asking.
    for letter_id in ("\x00", "\udcff", "x" * 10_000, ""):
        with pytest.raises(dlq.DeadLetterNotFound):
            dlq.get(letter_id)
        assert dlq.actions(letter_id) == []


@pytest.mark.parametrize("letter_id", ["\x00", "abc\x01", "not-an-id"])
def test_the_cli_says_no_dead_letter_has_an_id_that_is_none(letter_id: str) -> None:
    for command in (["show"], ["replay"], ["discard"]):
        result = CliRunner().invoke(main, ["dlq", *command, letter_id])

        assert result.exit_code == 1, result.output
        assert "no dead letter" in result.output
        assert isinstance(result.exception, SystemExit)  # click's exit, not a traceback


# --- the list's filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("queue", "\x00"),
        ("queue", "nowhere"),
        ("queue", "orders\x00"),
        ("status", "\x00"),
        ("status", "lost"),
        *(("since", value) for value in BAD_SINCE),
    ],
)
def test_a_filter_the_store_does_not_hold_is_a_422_naming_it(
    client: FlaskClient, name: str, value: str
) -> None:
    query = f"{name}={quote(value)}"

    fields = assert_api_error(
        client.get(f"/api/admin/dead-letters?{query}", headers=ADMIN), 422, "invalid_fields"
    )
    page = client.get(f"/admin/dead-letters?{query}", headers=ADMIN)

    assert list(fields) == [name] and fields[name].startswith("must be")
    assert page.status_code == 422 and page.mimetype == "text/html"
    assert re.search(rf'role="alert">The {name} filter must be', page.get_data(as_text=True))


def test_every_filter_the_store_does_not_hold_is_named_at_once(client: FlaskClient) -> None:
    query = "queue=%00&status=%00&since=800000d"

    fields = assert_api_error(
        client.get(f"/api/admin/dead-letters?{query}", headers=ADMIN), 422, "invalid_fields"
    )
    page = client.get(f"/admin/dead-letters?{query}", headers=ADMIN).get_data(as_text=True)

    assert set(fields) == {"queue", "status", "since"}
    assert all(f'role="alert">The {name} filter must be' in page for name in fields)


def test_the_filters_name_what_they_take(client: FlaskClient) -> None:
    def message(query: str) -> str:
        response = client.get(f"/api/admin/dead-letters?{query}", headers=ADMIN)
        return str(next(iter(response.get_json()["error"]["fields"].values())))

    assert message("queue=x") == (
        "must be one of shop, orders, payments, shipping, notifications or unknown"
    )
    assert message("status=x") == "must be one of parked, replayed, discarded or all"
    assert message("since=x").startswith("must be an ISO 8601 time (UTC when it has no offset)")
    assert "1970-01-01" in message("since=800000d")


def test_the_filters_the_store_holds_still_list_letters(client: FlaskClient) -> None:
    letter_id = parked_letter("payments.on_order_placed")
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()

    def listed(query: str) -> list[str]:
        response = client.get(f"/api/admin/dead-letters?{query}", headers=ADMIN)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [letter["id"] for letter in response.get_json()]

    assert letter_id in listed("queue=payments&status=parked&since=2h")
    assert letter_id in listed(f"since={quote(an_hour_ago)}")  # no offset: UTC
    assert letter_id in listed("since=1970-01-01T00:00:00%2B00:00&status=all")
    assert letter_id not in listed("queue=unknown")
    assert letter_id not in listed("since=9999-12-31T23:59:59Z")
    assert letter_id in listed("queue=&status=&since=")  # empty: as if not given
    page = client.get("/admin/dead-letters?queue=payments&status=all", headers=ADMIN)
    assert page.status_code == 200 and letter_id in page.get_data(as_text=True)


# --- shoeshop dlq list --since -------------------------------------------------------------------


@pytest.mark.parametrize("since", BAD_SINCE)
def test_the_cli_answers_a_bad_since_with_a_usage_error_naming_it(since: str) -> None:
    result = CliRunner().invoke(main, ["dlq", "list", "--since", since])

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--since'" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_the_cli_takes_a_since_it_can_read_and_the_unknown_queue() -> None:
    letter_id = parked_letter("payments.on_order_placed")
    runner = CliRunner()

    recent = runner.invoke(main, ["dlq", "list", "--since", "2h", "--queue", "payments"])
    from_epoch = runner.invoke(main, ["dlq", "list", "--since", "1970-01-01T00:00:00+00:00"])
    unknown = runner.invoke(main, ["dlq", "list", "--queue", "unknown"])

    assert recent.exit_code == 0 and letter_id in recent.output
    assert from_epoch.exit_code == 0 and letter_id in from_epoch.output
    assert unknown.exit_code == 0, unknown.output
