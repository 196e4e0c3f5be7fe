"""A customer erased on request: no table of any component, no dead letter and no archive file
holds their name, email, address or sealed card any more; their orders' facts stay (issue #14).

Real worker, broker and databases; the scan reads every row of every table each component's
migrations made, and every archive file, as text. The same erasure runs from `shoeshop erase`,
the admin page (/admin/erasure) and the admin API (POST /api/admin/erasure).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import re
import threading
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, delete, insert, select
from werkzeug.test import TestResponse

from config.settings import COMPONENTS
from shop import erasure as shop_erasure
from tests.support.integration import order, statements_run
from tests.support.shop import FAILING_CARD, order_body, wait_for
from workers.cli import erase
from workers.messaging import deadletters
from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import utcnow
from workers.messaging.tables import archive_dirs, outbox
from workers.operations import erasure as operations_erasure
from workers.operations import retention
from workers.schema.tables import metadata_of

pytestmark = pytest.mark.usefixtures("worker")

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}


def customer(tag: str) -> dict[str, Any]:
    return {
        "name": f"Zoë Quist {tag}",
        "email": f"Zelda.{tag}@Example.com",
        "line1": f"{tag} Ærøgade 9",
    }


def park_and_archive(order_id: str, archive_dir: Path) -> None:
    """A copy of the order's order.placed in the dead letters, and the shop's outbox archived
    (as the relay's pruning would, a month on) into ``archive_dir``."""
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()
    deadletters.park("orders.on_order_placed", placed, RuntimeError("kept for the test"), 1)
    retention.prune(
        utcnow() + timedelta(days=30), outboxes=["shop"], inboxes=[], archive_dir=archive_dir
    )


def _decoded(line: str) -> str:
    try:
        return json.dumps(json.loads(line), ensure_ascii=False)
    except ValueError:
        return ""


def place_as(client: FlaskClient, who: dict[str, Any], **kwargs: Any) -> str:
    body = order_body(sku="CAS-002", **kwargs)
    body["customer"] = {"name": who["name"], "email": who["email"]}
    body["shipping_address"] = {**body["shipping_address"], "line1": who["line1"]}
    response = client.post("/api/orders", json=body)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def found_anywhere(needles: list[str], archive_dir: Path) -> list[str]:
    """Where any of ``needles`` still is: 'component.table' for each table holding one, and
    each archive file."""
    where = []
    for component in COMPONENTS:
        with engine_for(component).connect() as conn:
            for metadata in metadata_of(component):
                for table in metadata.sorted_tables:
                    rows = conn.execute(select(table)).mappings().all()
                    rows_text = [dict(row) for row in rows]
                    text = json.dumps(rows_text, default=str, ensure_ascii=False).lower()
                    if any(needle.lower() in text for needle in needles):
                        where.append(f"{component}.{table.name}")
    for path in archive_dir.glob("*.jsonl"):
        # As written (a torn line too) and as read back: JSON escapes what is not ASCII.
        written = path.read_text("utf-8")
        text = (written + "".join(map(_decoded, written.splitlines()))).lower()
        if any(needle.lower() in text for needle in needles):
            where.append(str(path.name))
    return where


def test_an_erased_customer_is_nowhere_and_their_orders_facts_stay(
    client: FlaskClient, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    who, other = customer(tag), customer(uuid.uuid4().hex[:10])
    shipped = place_as(client, who, size="42")
    parked = place_as(client, who, size="43", card=FAILING_CARD)
    kept = place_as(client, other, size="44")
    wait_for(lambda: order(client, shipped)["status"] == "SHIPPED")
    wait_for(lambda: order(client, kept)["status"] == "SHIPPED")
    wait_for(lambda: order(client, parked)["delayed"], timeout_s=60)
    park_and_archive(shipped, tmp_path)
    needles = [who["name"], who["email"], who["line1"]]
    assert found_anywhere(needles, tmp_path)  # the scan sees them before
    archives = sorted(tmp_path.glob("*-outbox-*.jsonl"))
    archives[0].chmod(0o640)  # an operator's choice, which the rewrite keeps
    before = {oid: order(client, oid) for oid in (shipped, parked)}

    # Run without SHOESHOP_ARCHIVE_DIR: the directory the relay noted archiving into is found.
    result = CliRunner().invoke(erase, ["--email", who["email"].upper()])
    assert result.exit_code == 0, result.output
    assert "erased 2 order(s)" in result.output

    # orders, shipping and notifications erase theirs when they hear customer.erased.
    with contextlib.suppress(AssertionError):  # the assertion below names what is left
        wait_for(lambda: not found_anywhere(needles, tmp_path), timeout_s=30)
    assert found_anywhere(needles, tmp_path) == [], found_anywhere(needles, tmp_path)
    for oid, was in before.items():
        now = order(client, oid)
        assert now["customer"] == {"name": "erased"}
        facts = ("status", "items", "total_cents", "currency", "timeline")
        assert {k: now[k] for k in facts} == {k: was[k] for k in facts}
    assert archives[0].stat().st_mode & 0o777 == 0o640
    assert {path.stat().st_mode & 0o777 for path in archives[1:]} <= {0o600}
    # Another customer is untouched.
    assert found_anywhere([other["name"], other["email"], other["line1"]], tmp_path)
    assert order(client, kept)["customer"] == {"name": other["name"]}


def test_an_archive_directory_not_on_this_host_stops_the_erasure_before_the_shop_erases(
    client: FlaskClient, tmp_path: Path
) -> None:
    # The relay archived into a directory this process cannot see (another host, or moved):
    # the erasure says so and erases nothing of the shop's, so running it again where the
    # directory is finishes it.
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="42")
    elsewhere = tmp_path / "on-the-relays-host"
    with transaction("operations") as conn:
        conn.execute(insert(archive_dirs), {"path": str(elsewhere), "first_used_at": utcnow()})
    try:
        refused = CliRunner().invoke(erase, ["--email", who["email"]])
        elsewhere.mkdir()
        done = CliRunner().invoke(erase, ["--email", who["email"]])
    finally:
        with transaction("operations") as conn:
            conn.execute(delete(archive_dirs).where(archive_dirs.c.path == str(elsewhere)))

    assert refused.exit_code != 0
    assert f"the archive directory {elsewhere}" in refused.output
    assert "run the erasure on the relay's host" in refused.output
    assert done.exit_code == 0, done.output
    assert "erased 1 order(s)" in done.output
    assert order(client, order_id)["customer"] == {"name": "erased"}


def all_published(component: str, order_ids: list[str]) -> bool:
    with engine_for(component).connect() as conn:
        rows = conn.execute(
            select(outbox.c.published_at).where(outbox.c.subject.in_(order_ids))
        ).all()
    return bool(rows) and all(row.published_at is not None for row in rows)


def test_a_row_archived_after_the_erasure_before_its_component_heard_of_it_is_archived_erased(
    client: FlaskClient, tmp_path: Path
) -> None:
    # The relay prunes the outboxes between operations' part of an erasure and the components'
    # hearing of customer.erased (here: never heard, the shop's part not run): each row it
    # archives about an erased order is written erased; another customer's rows are kept whole.
    who, other = customer(uuid.uuid4().hex[:10]), customer(uuid.uuid4().hex[:10])
    erased, kept = place_as(client, who, size="42"), place_as(client, other, size="43")
    for oid in (erased, kept):
        wait_for(lambda oid=oid: order(client, oid)["status"] == "SHIPPED")
    # The relay marks a row published after it sent it, so an order may move on first.
    wait_for(lambda: all(all_published(c, [erased, kept]) for c in ("shop", "orders", "shipping")))
    operations_erasure.erase([erased], archive_dir=tmp_path)
    assert not list(tmp_path.glob("*.jsonl"))  # nothing archived yet: nothing rewritten

    retention.prune(
        utcnow() + timedelta(days=30),
        outboxes=["shop", "orders", "shipping"],
        inboxes=[],
        archive_dir=tmp_path,
    )

    archived = [
        json.loads(line) for f in tmp_path.glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    about = {oid: [row for row in archived if row["subject"] == oid] for oid in (erased, kept)}
    sources = {oid: {row["event"]["source"] for row in rows} for oid, rows in about.items()}
    assert sources[erased] == sources[kept] == {"/shop", "/orders", "/shipping"}
    text, kept_text = (json.dumps(about[oid], ensure_ascii=False) for oid in (erased, kept))
    assert not [needle for needle in [who["name"], who["email"], who["line1"]] if needle in text]
    assert "erased@erased.invalid" in text
    assert other["email"] in kept_text and other["line1"] in kept_text


def test_erasing_an_unknown_email_changes_nothing(client: FlaskClient) -> None:
    result = CliRunner().invoke(erase, ["--email", f"nobody-{uuid.uuid4().hex}@example.com"])
    assert result.exit_code == 0, result.output
    assert "knows no customer" in result.output


def test_an_email_without_an_at_is_refused_naming_the_option() -> None:
    result = CliRunner().invoke(erase, ["--email", "nobody"])
    assert result.exit_code == 2
    assert "--email" in result.output


def test_an_email_is_matched_without_case_in_every_script(client: FlaskClient) -> None:
    tag = uuid.uuid4().hex[:8]
    who = {"name": f"Ärger {tag}", "email": f"Ärger.{tag}@Exämple.com", "line1": f"{tag} Öde 1"}
    order_id = place_as(client, who, size="45")

    result = CliRunner().invoke(erase, ["--email", f"ärger.{tag}@EXÄMPLE.com"])

    assert result.exit_code == 0, result.output
    assert "erased 1 order(s)" in result.output
    assert order(client, order_id)["customer"] == {"name": "erased"}


def test_an_email_that_differs_only_by_a_letter_casefold_joins_is_another_customer(
    client: FlaskClient,
) -> None:
    # casefold() reads "ß" as "ss": two addresses, two customers.
    tag = uuid.uuid4().hex[:8]
    sharp = {"name": f"Straße {tag}", "email": f"straße.{tag}@example.de", "line1": f"{tag} 1"}
    double = {"name": f"Strasse {tag}", "email": f"strasse.{tag}@example.de", "line1": f"{tag} 2"}
    kept = place_as(client, sharp, size="44")
    erased = place_as(client, double, size="44")

    result = CliRunner().invoke(erase, ["--email", double["email"]])

    assert result.exit_code == 0, result.output
    assert "erased 1 order(s)" in result.output
    assert order(client, erased)["customer"] == {"name": "erased"}
    assert order(client, kept)["customer"] == {"name": sharp["name"]}


def test_a_torn_archive_line_is_dropped_not_a_traceback(
    client: FlaskClient, tmp_path: Path
) -> None:
    torn = tmp_path / "orders-outbox-2026-11-28.jsonl"
    torn.write_text('{"subject": "a", "event": {"data": {"customer": {"name": "Torn', "utf-8")

    letters, archived = operations_erasure.erase([str(uuid.uuid4())], archive_dir=tmp_path)

    assert (letters, archived) == (0, 1)
    assert torn.read_text("utf-8") == ""


def test_what_an_erased_email_reads_is_not_a_customer_to_erase() -> None:
    result = CliRunner().invoke(erase, ["--email", "Erased@Erased.Invalid"])
    assert result.exit_code == 2
    assert "erased email" in result.output


# --- the admin page and the admin API -----------------------------------------------------------


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/admin/erasure", headers=ADMIN).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def erase_on_page(
    client: FlaskClient, email: str, confirm: bool = True, headers: dict[str, str] = ADMIN
) -> TestResponse:
    form = {"csrf_token": csrf_token(client), "email": email}
    if confirm:
        form["confirm"] = "yes"
    return client.post("/admin/erasure", headers=headers, data=form)


def shipped_order_of(client: FlaskClient, who: dict[str, Any], size: str) -> str:
    """An order of ``who`` that has shipped: nothing about it is still on its way to a worker."""
    order_id = place_as(client, who, size=size)
    wait_for(lambda: order(client, order_id)["status"] == "SHIPPED")
    return order_id


def assert_nowhere(needles: list[str], archive_dir: Path) -> None:
    # orders, shipping and notifications erase theirs when they hear customer.erased.
    with contextlib.suppress(AssertionError):  # the assertion below names what is left
        wait_for(lambda: not found_anywhere(needles, archive_dir), timeout_s=30)
    assert found_anywhere(needles, archive_dir) == [], found_anywhere(needles, archive_dir)


def test_the_admin_page_erases_a_customer_everywhere_and_says_how_much(
    client: FlaskClient, tmp_path: Path, setting: Callable[[str, str], None]
) -> None:
    setting("SHOESHOP_ARCHIVE_DIR", str(tmp_path))
    who = customer(uuid.uuid4().hex[:10])
    order_id = shipped_order_of(client, who, size="42")
    park_and_archive(order_id, tmp_path)
    needles = [who["name"], who["email"], who["line1"]]
    assert found_anywhere(needles, tmp_path)

    response = erase_on_page(client, who["email"].upper())

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/erasure"
    told = client.get("/admin/erasure", headers=ADMIN).get_data(as_text=True)
    assert "Erased 1 order from the shop, 1 dead letter and 1 archived row." in told
    assert_nowhere(needles, tmp_path)
    assert order(client, order_id)["customer"] == {"name": "erased"}


def test_the_admin_page_says_what_erasure_removes_and_the_dashboard_links_to_it(
    client: FlaskClient,
) -> None:
    page = client.get("/admin/erasure", headers=ADMIN)
    dashboard = client.get("/admin", headers=ADMIN).get_data(as_text=True)

    assert page.status_code == 200
    text = " ".join(page.get_data(as_text=True).split())
    assert "facts (items, amounts, statuses, times) stay" in text
    assert "Mails already sent" in text and "cannot be undone" in text
    assert 'type="checkbox" name="confirm"' in text
    assert 'href="/admin/erasure"' in dashboard


def test_the_admin_api_erases_a_customer_and_answers_the_counts(
    client: FlaskClient, tmp_path: Path
) -> None:
    who = customer(uuid.uuid4().hex[:10])
    order_id = shipped_order_of(client, who, size="43")

    response = client.post("/api/admin/erasure", headers=ADMIN, json={"email": who["email"]})
    again = client.post("/api/admin/erasure", headers=ADMIN, json={"email": who["email"]})

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"orders": 1, "dead_letters": 0, "archived_rows": 0}
    assert again.get_json() == {"orders": 0, "dead_letters": 0, "archived_rows": 0}
    assert_nowhere([who["name"], who["email"], who["line1"]], tmp_path)
    assert order(client, order_id)["customer"] == {"name": "erased"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"email": "nobody@example.com", "email": "%s"}',
        b'{"email": "%s", "n": NaN}',
        b'{"email": "%s\xff"}',
    ],
    ids=["key twice", "NaN", "not UTF-8"],
)
def test_an_api_body_a_parser_could_read_two_ways_is_refused_and_erases_nothing(
    client: FlaskClient, body: bytes
) -> None:
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="42")

    response = client.post(
        "/api/admin/erasure",
        headers={**ADMIN, "Content-Type": "application/json"},
        data=body.replace(b"%s", who["email"].encode()),
    )

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_json"
    assert order(client, order_id)["customer"] == {"name": who["name"]}


def test_an_email_the_shop_does_not_know_erases_nothing_and_says_so(client: FlaskClient) -> None:
    response = erase_on_page(client, f"nobody-{uuid.uuid4().hex}@example.com")

    assert response.status_code == 200
    assert "knows no customer with that email: nothing was erased" in response.get_data(
        as_text=True
    )


# What no customer's email can be, and the sentence said at the field for each.
NOT_EMAILS = [
    ("", "is required"),
    ("   ", "is required"),
    ("nobody.example.com", "has an @"),
    ("erased@erased.invalid", "what an erased email reads"),
    ("Erased@Erased.INVALID", "what an erased email reads"),
    ("a" * 243 + "@example.com", "at most 254 characters"),
]


@contextlib.contextmanager
def no_statement_from_this_thread() -> Iterator[None]:
    """Fails unless this thread (where the test client serves a request) runs no statement on
    any database meanwhile; the worker's threads may run theirs."""
    here = threading.get_ident()
    ran: list[str] = []

    def heard(component: str, sql: str, _params: Any) -> None:
        if threading.get_ident() == here:
            ran.append(f"{component}: {sql}")

    with statements_run(heard):
        yield
    assert ran == []


@pytest.mark.parametrize(("email", "sentence"), NOT_EMAILS)
def test_what_is_no_customers_email_is_a_422_at_the_field_and_touches_no_database(
    client: FlaskClient, email: str, sentence: str
) -> None:
    token = csrf_token(client)
    form = {"csrf_token": token, "email": email, "confirm": "yes"}

    with no_statement_from_this_thread():
        page = client.post("/admin/erasure", headers=ADMIN, data=form)
        api = client.post("/api/admin/erasure", headers=ADMIN, json={"email": email})

    assert page.status_code == 422
    error = re.search(r'id="email-error"><p>([^<]*)</p>', page.get_data(as_text=True))
    assert error is not None and sentence in error.group(1)
    assert api.status_code == 422 and api.get_json()["error"]["code"] == "invalid_fields"
    assert sentence in api.get_json()["error"]["fields"]["email"]


def test_an_erasure_not_confirmed_is_a_422_and_the_customer_stays(client: FlaskClient) -> None:
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="44")

    with no_statement_from_this_thread():
        response = erase_on_page(client, who["email"], confirm=False)

    assert response.status_code == 422
    assert "Tick the box to confirm" in response.get_data(as_text=True)
    assert order(client, order_id)["customer"] == {"name": who["name"]}


def test_an_api_body_with_no_email_string_is_a_422_naming_it(client: FlaskClient) -> None:
    for body in ({}, {"email": None}, {"email": ["a@b.c"]}):
        response = client.post("/api/admin/erasure", headers=ADMIN, json=body)
        assert response.status_code == 422
        assert set(response.get_json()["error"]["fields"]) == {"email"}


def test_erasure_needs_the_admin_password(client: FlaskClient) -> None:
    page = client.get("/admin/erasure")
    posted = erase_on_page(client, "ada@example.com", headers={})
    api = client.post("/api/admin/erasure", json={"email": "ada@example.com"})

    assert page.status_code == 401 and posted.status_code == 401
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"


def test_the_erasure_form_needs_its_csrf_token(client: FlaskClient) -> None:
    form = {"email": "ada@example.com", "confirm": "yes"}

    with no_statement_from_this_thread():
        response = client.post("/admin/erasure", headers=ADMIN, data=form)

    assert response.status_code == 400


@pytest.fixture
def shop_database_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The erasure's reads of the shop database go to a real SQLite engine on a file that cannot
    be opened (its folder does not exist)."""
    away: Engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'shop.db'}")
    monkeypatch.setattr(shop_erasure, "engine_for", lambda component: away)
    yield
    away.dispose()


@pytest.mark.usefixtures("shop_database_away")
def test_a_database_that_is_away_is_a_503_saying_to_run_it_again(client: FlaskClient) -> None:
    page = erase_on_page(client, "ada@example.com")
    api = client.post("/api/admin/erasure", headers=ADMIN, json={"email": "ada@example.com"})

    assert page.status_code == 503 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "not finished" in text and "Traceback" not in text
    assert api.status_code == 503 and api.get_json()["error"]["code"] == "erasure_unfinished"


def placed_event(who: dict[str, Any]) -> Any:
    """An order.placed of an order no component has heard of yet, for ``who``."""
    from tests.integration.test_notifications import order_placed

    event = order_placed(who["email"])
    data = {
        **event.data,
        "customer": {"name": who["name"], "email": who["email"]},
        "shipping_address": {**event.data["shipping_address"], "line1": who["line1"]},
    }
    return dataclasses.replace(event, data=data)


def erased_notice(order_id: str) -> Any:
    from workers.messaging import contracts

    return contracts.new_event(
        contracts.CustomerErased(order_ids=[order_id]), source="/shop", subject=order_id
    )


def test_an_erasure_that_overtakes_its_order_leaves_it_erased_wherever_it_comes(
    tmp_path: Path,
) -> None:
    # customer.erased applied before the order's data reaches orders, notifications and shipping
    # (the order.placed retried, a shipment.requested in flight): each keeps it erased.
    from workers.messaging import contracts
    from workers.messaging.database import transaction
    from workers.messaging.outbox import Outbox
    from workers.notifications import handlers as notifications
    from workers.notifications import store as notifications_store
    from workers.orders import handlers as orders
    from workers.shipping import handlers as shipping
    from workers.shipping import store as shipping_store

    who = customer(uuid.uuid4().hex[:10])
    placed = placed_event(who)
    order_id = placed.data["order_id"]
    for component, handler in (
        ("orders", orders.on_customer_erased),
        ("shipping", shipping.on_customer_erased),
        ("notifications", notifications.on_customer_erased),
    ):
        with transaction(component) as conn:
            handler(conn, erased_notice(order_id), Outbox(conn))

    with transaction("orders") as conn:
        orders.on_order_placed(conn, placed, Outbox(conn))
    assert notifications.confirm(placed) is None  # no mail: nobody is left to write to
    requested = contracts.new_event(
        contracts.ShipmentRequested(
            order_id=order_id,
            items=[contracts.ShipmentItem(sku="RUN-001", name="Runner", size="42", quantity=1)],
            shipping_address=contracts.Address(**placed.data["shipping_address"]),
        ),
        source="/orders",
        subject=order_id,
    )
    with transaction("shipping") as conn:
        shipping.on_shipment_requested(conn, requested, Outbox(conn))

    assert found_anywhere([who["name"], who["email"], who["line1"]], tmp_path) == []
    with engine_for("shipping").connect() as conn:
        parcel = shipping_store.find(conn, order_id)
    with engine_for("notifications").connect() as conn:
        kept = notifications_store.recipient(conn, order_id)
    assert parcel is not None and parcel.address is not None
    assert parcel.address["country"] == placed.data["shipping_address"]["country"]
    assert kept is not None and kept.erased
    # The order's facts stay: orders recorded it, and asked for its (erased, so refused) payment.
    with engine_for("orders").connect() as conn:
        asked = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).all()
    assert [row.event["data"]["token"] for row in asked if "token" in row.event["data"]] == [
        "erased"
    ]


def test_a_dead_letters_message_and_traceback_lose_what_they_quoted_of_the_erased_event(
    client: FlaskClient,
) -> None:
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="41")
    wait_for(lambda: order(client, order_id)["status"] == "SHIPPED")
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()
    try:  # a failure whose text and traceback quote the customer, as a refusal might
        raise RuntimeError(f"{who['email'].upper()} refused; {who['name']} at {who['line1']}")
    except RuntimeError as failure:
        deadletters.park("notifications.on_order_placed", placed, failure, 1)

    result = CliRunner().invoke(erase, ["--email", who["email"]])

    assert result.exit_code == 0, result.output
    with engine_for("operations").connect() as conn:
        letter = conn.execute(
            select(deadletters.dead_letters).where(deadletters.dead_letters.c.subject == order_id)
        ).one()
    text = f"{letter.message}\n{letter.traceback}".lower()
    assert "refused" in text and "runtimeerror" in text
    for needle in (who["email"], who["name"], who["line1"]):
        assert needle.lower() not in text, needle


def test_an_email_in_another_unicode_form_is_the_same_customer(client: FlaskClient) -> None:
    # Ä typed as one letter (NFC) or as A and a combining diaeresis (NFD, as some keyboards and
    # systems send it) is one letter: the erasure finds the order either way.
    tag = uuid.uuid4().hex[:10]
    decomposed = {
        **customer(tag),
        "email": unicodedata.normalize("NFD", f"Ärger.{tag}@example.com"),
    }
    order_id = place_as(client, decomposed, size="40")

    answer = client.post(
        "/api/admin/erasure",
        headers=ADMIN,
        json={"email": unicodedata.normalize("NFC", f"ärger.{tag}@EXAMPLE.com")},
    )

    assert answer.status_code == 200 and answer.get_json()["orders"] == 1, answer.get_json()
    assert order(client, order_id)["customer"] == {"name": "erased"}


def test_a_message_parked_after_the_erasure_is_parked_erased_and_its_replay_charges_nobody(
    client: FlaskClient,
) -> None:
    # A payment request being retried while its customer is erased, parked afterwards: the
    # erasure has passed, so the letter is parked erased (the card too), its texts redacted.
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="39")
    wait_for(lambda: order(client, order_id)["status"] == "SHIPPED")
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()
    token = placed["data"]["payment"]["token"]
    operations_erasure.erase([order_id])  # operations' part of the erasure: the record

    try:
        raise RuntimeError(f"gave up on {who['email']} ({who['name']}) with {token}")
    except RuntimeError as failure:
        letter_id = deadletters.park("orders.on_order_placed", placed, failure, 5)

    with engine_for("operations").connect() as conn:
        letter = conn.execute(
            select(deadletters.dead_letters).where(deadletters.dead_letters.c.id == letter_id)
        ).one()
    kept = json.dumps([letter.event, letter.message, letter.traceback], ensure_ascii=False).lower()
    for needle in (who["email"], who["name"], who["line1"], token):
        assert needle.lower() not in kept, needle
    assert letter.event["data"]["payment"]["token"] == "erased"
    assert letter.event["data"]["total_cents"] == placed["data"]["total_cents"]  # facts stay


@pytest.mark.parametrize("joiner", ["\u200d", "\u200c", "\u00ad", "\ue000"])
def test_every_email_a_checkout_takes_can_be_erased(client: FlaskClient, joiner: str) -> None:
    # Zero-width joiners (Persian, Indic scripts, emoji), a soft hyphen, a private-use letter:
    # not printable to Python, taken by the checkout, so erasable too.
    tag = uuid.uuid4().hex[:10]
    who = {**customer(tag), "email": f"zel{joiner}da.{tag}@example.com"}
    order_id = place_as(client, who, size="38")

    result = CliRunner().invoke(erase, ["--email", who["email"]])

    assert result.exit_code == 0, result.output
    assert "erased 1 order(s)" in result.output
    assert order(client, order_id)["customer"] == {"name": "erased"}


def test_a_checkout_in_the_invalid_domain_is_refused_at_its_field(client: FlaskClient) -> None:
    # What an erased order reads (erased@erased.invalid) is no customer's: .invalid takes no mail.
    for email in ("Erased@Erased.Invalid", "ada@shop.invalid", "ada@shop.invalid."):
        body = order_body(sku="CAS-002", size="38")
        body["customer"] = {"name": "Ada", "email": email}
        answer = client.post("/api/orders", json=body)
        assert answer.status_code == 422, (email, answer.get_json())
        assert "customer.email" in json.dumps(answer.get_json()), answer.get_json()


def test_an_erased_checkouts_idempotency_key_tells_nothing_of_the_body(
    client: FlaskClient,
) -> None:
    # Kept as it was, the body's HMAC would answer whether a guessed body is the erased
    # customer's (202 for theirs, 422 for another): after the erasure every body is refused.
    who = customer(uuid.uuid4().hex[:10])
    body = order_body(sku="CAS-002", size="39")
    body["customer"] = {"name": who["name"], "email": who["email"]}
    key = {"Idempotency-Key": f"erasure-{uuid.uuid4().hex}"}
    first = client.post("/api/orders", json=body, headers=key)
    assert first.status_code == 202, first.get_json()

    assert CliRunner().invoke(erase, ["--email", who["email"]]).exit_code == 0
    guessed = client.post("/api/orders", json=body, headers=key)
    other = client.post(
        "/api/orders",
        json={**body, "customer": {"name": "X", "email": "x@example.com"}},
        headers=key,
    )

    assert guessed.status_code == other.status_code == 422
    assert guessed.get_json() == other.get_json()


def test_an_order_placed_while_the_erasure_runs_is_erased_with_the_rest(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The customer checks out again while operations' copies are being erased (archive files
    # can take seconds): the shop's part reads the customer's orders again and erases both.
    import workers.customer_erasure as customer_erasure

    who = customer(uuid.uuid4().hex[:10])
    first = place_as(client, who, size="40")
    late: list[str] = []
    erase_operations = operations_erasure.erase

    def erase_and_meanwhile_check_out(order_ids: Any, archive_dir: Any = None) -> Any:
        erased = erase_operations(order_ids, archive_dir)
        if not late:
            late.append(place_as(client, who, size="41"))
        return erased

    monkeypatch.setattr(customer_erasure.operations_erasure, "erase", erase_and_meanwhile_check_out)

    result = CliRunner().invoke(erase, ["--email", who["email"]])

    assert result.exit_code == 0, result.output
    assert "erased 2 order(s)" in result.output
    for oid in (first, *late):
        assert order(client, oid)["customer"] == {"name": "erased"}, oid


def test_a_letter_no_task_could_read_that_holds_the_customer_is_erased(
    client: FlaskClient,
) -> None:
    # Parked as text with no order named (its JSON was cut short): what it held goes whole.
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="43")
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()
    cut = json.dumps([[placed], {}, {}])[:-5]
    try:
        json.loads(cut)
    except ValueError as failure:
        letter_id = deadletters.park_undecodable("orders", cut, failure)

    result = CliRunner().invoke(erase, ["--email", who["email"]])

    assert result.exit_code == 0, result.output
    with engine_for("operations").connect() as conn:
        letter = conn.execute(
            select(deadletters.dead_letters).where(deadletters.dead_letters.c.id == letter_id)
        ).one()
    kept = json.dumps([letter.event, letter.raw, letter.message, letter.traceback]).lower()
    assert letter.raw == "erased" and letter.event is None
    for needle in (who["email"], who["name"], who["line1"]):
        assert json.dumps(needle.lower())[1:-1] not in kept and needle.lower() not in kept


@pytest.mark.parametrize("parked", ["before", "after"])
def test_a_letter_whose_subject_names_another_order_than_its_data_is_erased(
    client: FlaskClient, parked: str
) -> None:
    # An event that contradicts itself (subject one order, data.order_id the customer's): its
    # letter names no order, and the customer's erasure finds it by what it holds, whether it
    # was parked before the erasure or after it (a retry's last failure).
    who = customer(uuid.uuid4().hex[:10])
    order_id = place_as(client, who, size="44")
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()
    ghost = {**placed, "subject": str(uuid.uuid4())}
    park = lambda: deadletters.park("orders.on_order_placed", ghost, RuntimeError("x"), 1)  # noqa: E731

    letter_id = park() if parked == "before" else None
    result = CliRunner().invoke(erase, ["--email", who["email"]])
    letter_id = letter_id or park()

    assert result.exit_code == 0, result.output
    with engine_for("operations").connect() as conn:
        letter = conn.execute(
            select(deadletters.dead_letters).where(deadletters.dead_letters.c.id == letter_id)
        ).one()
    assert letter.subject is None
    kept = json.dumps([letter.event, letter.raw, letter.message, letter.traceback]).lower()
    for needle in (who["email"], who["name"], who["line1"]):
        assert json.dumps(needle.lower())[1:-1] not in kept and needle.lower() not in kept


def test_a_mail_whose_customer_is_erased_before_its_claim_is_not_sent_nor_redelivered(
    catcher: Any,
) -> None:
    # The recipient read, then customer.erased committed, then the mail about to be claimed:
    # the claim asks again and sends nothing. A redelivery of the confirmation (its claim made
    # before the erasure) sends nothing either.
    from tests.integration.test_notifications import mails_to, wait_for_mails
    from workers.messaging import contracts
    from workers.messaging.database import transaction
    from workers.messaging.outbox import Outbox
    from workers.notifications import handlers as notifications
    from workers.notifications import mails

    who = customer(uuid.uuid4().hex[:10])
    placed = placed_event(who)
    order_id = placed.data["order_id"]
    assert notifications.confirm(placed) is not None
    wait_for_mails(catcher, who["email"], 1)
    recipient = notifications.known_recipient(order_id)  # read before the erasure
    shipped = contracts.new_event(
        contracts.OrderStatusChanged(order_id=order_id, status="SHIPPED", reason=None),
        source="/orders",
        cause=placed,
    )

    with transaction("notifications") as conn:
        notifications.on_customer_erased(conn, erased_notice(order_id), Outbox(conn))
    late = mails.shipped(recipient, "DHL", "JD0001")

    assert notifications.deliver(late, recipient, shipped) is None
    assert notifications.confirm(placed) is None
    assert len(mails_to(catcher, who["email"])) == 1
