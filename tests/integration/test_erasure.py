"""A customer erased on request: no table of any component, no dead letter and no archive file
holds their name, email, address or sealed card any more; their orders' facts stay (issue #14).

Real worker, broker and databases; the scan reads every row of every table each component's
migrations made, and every archive file, as text.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from config.settings import COMPONENTS
from tests.support.integration import order
from tests.support.shop import FAILING_CARD, order_body, wait_for
from workers.cli import erase
from workers.messaging import deadletters
from workers.messaging.database import engine_for
from workers.messaging.envelope import utcnow
from workers.messaging.tables import outbox
from workers.operations import erasure as operations_erasure
from workers.operations import retention
from workers.schema.tables import metadata_of

pytestmark = pytest.mark.usefixtures("worker")


def customer(tag: str) -> dict[str, Any]:
    return {
        "name": f"Zelda Quist {tag}",
        "email": f"Zelda.{tag}@Example.com",
        "line1": f"{tag} Privacy Lane 9",
    }


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
                    text = json.dumps([dict(row) for row in rows], default=str).lower()
                    if any(needle.lower() in text for needle in needles):
                        where.append(f"{component}.{table.name}")
    for path in archive_dir.glob("*.jsonl"):
        text = path.read_text("utf-8").lower()
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
    # A copy of an order.placed in the dead letters, and the shop's outbox archived.
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == shipped)).scalar()
    deadletters.park("orders.on_order_placed", placed, RuntimeError("kept for the test"), 1)
    retention.prune(
        utcnow() + timedelta(days=30), outboxes=["shop"], inboxes=[], archive_dir=tmp_path
    )
    needles = [who["name"], who["email"], who["line1"]]
    assert found_anywhere(needles, tmp_path)  # the scan sees them before
    before = {oid: order(client, oid) for oid in (shipped, parked)}

    result = CliRunner().invoke(erase, ["--email", who["email"].upper()])
    assert result.exit_code == 0, result.output
    assert "erased 2 order(s)" in result.output
    operations_erasure.erase([shipped, parked], archive_dir=tmp_path)  # this test's archive

    # orders and shipping erase theirs when they hear customer.erased.
    with contextlib.suppress(AssertionError):  # the assertion below names what is left
        wait_for(lambda: not found_anywhere(needles, tmp_path), timeout_s=30)
    assert found_anywhere(needles, tmp_path) == [], found_anywhere(needles, tmp_path)
    for oid, was in before.items():
        now = order(client, oid)
        assert now["customer"] == {"name": "erased"}
        facts = ("status", "items", "total_cents", "currency", "timeline")
        assert {k: now[k] for k in facts} == {k: was[k] for k in facts}
    # Another customer is untouched.
    assert found_anywhere([other["name"], other["email"], other["line1"]], tmp_path)
    assert order(client, kept)["customer"] == {"name": other["name"]}


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
