"""Card numbers never reach a database in plain text: not the shop's, not any component's."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import inspect, text

from config.settings import COMPONENTS, get_settings
from tests.support.integration import on_component_schema, sqlite_file_bytes
from tests.support.shop import DECLINED_CARD, FLAKY_CARD, GOOD_CARD, order_body, wait_for
from workers.messaging.database import engine_for

pytestmark = pytest.mark.usefixtures("worker")
CARDS = (GOOD_CARD, DECLINED_CARD, FLAKY_CARD)


def every_stored_text() -> str:
    """All rows of all tables of every component, as text."""
    chunks = []
    for component in COMPONENTS:
        engine = engine_for(component)
        with engine.connect() as conn:
            on_component_schema(conn, component)
            for table in inspect(conn).get_table_names():
                quoted = engine.dialect.identifier_preparer.quote(table)
                rows = conn.execute(text(f"SELECT * FROM {quoted}"))
                chunks.extend(repr(tuple(row)) for row in rows)
    return "\n".join(chunks)


def raw_files(directory: Path) -> bytes:
    """The bytes of every SQLite file and write-ahead log under the data dir (read by another
    process: see sqlite_file_bytes)."""
    return sqlite_file_bytes(sorted(directory.rglob("*.db*")))


def test_no_card_number_is_stored_anywhere(client: FlaskClient) -> None:
    order_ids = []
    for card in CARDS:
        response = client.post("/api/orders", json=order_body(card=card, sku="HIK-001"))
        order_ids.append(response.get_json()["id"])
    for order_id in order_ids:
        wait_for(
            lambda oid=order_id: (
                client.get(f"/api/orders/{oid}").get_json()["status"] in ("SHIPPED", "CANCELLED")
            )
        )

    stored = every_stored_text()
    files = raw_files(get_settings().data_dir)

    assert "4242" in stored  # the last four digits are kept, so the scan does see card data
    for card in CARDS:
        assert card not in stored
        assert card.encode() not in files
