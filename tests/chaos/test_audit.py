"""The status audit of the reordered scenario (tests/chaos/audit.py) can fail: its triggers
record a write that moves a status backwards, on SQLite and on PostgreSQL, and it is flagged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.chaos import audit
from tests.chaos.audit import Write
from tests.support import stack as stacks
from tests.support.invariants import component_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose shop and orders databases hold the two audited tables, bare."""
    env = {"SHOESHOP_DATA_DIR": str(tmp_path)}
    name = f"shoeshop_audit_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        if reason := stacks.services_missing():
            if stacks.services_required():
                pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)
        with psycopg.connect(stacks.POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["SHOESHOP_DATABASE_URL"] = stacks.POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        for component, (table, key) in audit.AUDITED.items():
            with component_engine(env, component).begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"CREATE SCHEMA {component}")
                conn.exec_driver_sql(f"CREATE TABLE {table} ({key} TEXT PRIMARY KEY, status TEXT)")
        yield env
    finally:
        if request.param == "postgresql":
            with psycopg.connect(stacks.POSTGRES_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_triggers_record_every_write_and_a_backwards_one_is_flagged(
    databases: dict[str, str],
) -> None:
    # Given the audit installed
    audit.install(databases)
    # When an order is placed, paid, shipped and then set back to PAID in each table, and gone
    for component, (table, key) in audit.AUDITED.items():
        with component_engine(databases, component).begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {table} ({key}, status) VALUES ('o1', 'PLACED')")
            for status in ("PAID", "SHIPPED", "SHIPPED", "PAID"):
                conn.exec_driver_sql(f"UPDATE {table} SET status = '{status}' WHERE {key} = 'o1'")
            conn.exec_driver_sql(f"DELETE FROM {table}")
    # Then each write is read back in order, and the two backwards ones are flagged
    found = audit.writes(databases)
    for component, (table, _key) in audit.AUDITED.items():
        assert [w for w in found if w.component == component] == [
            Write(component, table, "INSERT", "o1", None, "PLACED"),
            Write(component, table, "UPDATE", "o1", "PLACED", "PAID"),
            Write(component, table, "UPDATE", "o1", "PAID", "SHIPPED"),
            Write(component, table, "UPDATE", "o1", "SHIPPED", "SHIPPED"),
            Write(component, table, "UPDATE", "o1", "SHIPPED", "PAID"),
            Write(component, table, "DELETE", "o1", "PAID", None),
        ]
    assert [(w.old, w.new) for w in found if w.backwards] == [
        ("SHIPPED", "PAID"),
        ("PAID", None),
    ] * 2


@pytest.mark.parametrize(
    ("old", "new", "backwards"),
    [
        (None, "PLACED", False),
        ("PLACED", "PAYMENT_PENDING", False),
        ("PLACED", "PAID", False),  # a notice that overtook PAYMENT_PENDING's
        ("PAYMENT_PENDING", "CANCELLED", False),
        ("PAID", "CANCELLED", False),
        ("PAID", "PAID", False),  # written again, unchanged
        ("PAID", "PAYMENT_PENDING", True),
        ("PAYMENT_PENDING", "PLACED", True),
        ("SHIPPED", "CANCELLED", True),
        ("CANCELLED", "SHIPPED", True),
        ("CANCELLED", "PAID", True),
        ("PLACED", None, True),
    ],
)
def test_a_status_moves_only_forward_and_a_final_one_never(
    old: str | None, new: str | None, backwards: bool
) -> None:
    assert Write("shop", "orders", "UPDATE", "o1", old, new).backwards is backwards
