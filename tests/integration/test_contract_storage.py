"""Whatever an event contract accepts, the databases store and give back unchanged (issue #11).

Every event body a current contract allows (drawn from its committed JSON Schema: any Unicode a
line of text may hold, the longest strings, the largest amounts) is written the ways the
components write it: whole into a JSON column (outboxes, the event store, the shop's log) and
each string into a VARCHAR of its contract's length (the summaries, the payments, the shipments).
On the services stack that is PostgreSQL, which refuses NUL in text and counts a VARCHAR in
characters; on the embedded one, SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import JSON, Column, Connection, Integer, MetaData, String, Table, Text, select

from tests.support.json_schema import Schema, values_of
from workers.messaging import schemas
from workers.messaging.contracts import MODELS
from workers.messaging.database import engine_for


def strings_of(schema: Schema, value: Any) -> Iterator[tuple[int | None, str]]:
    """Each string in ``value`` with the maxLength its schema gives it (None: no limit)."""
    if isinstance(value, str):
        branches = schema.get("anyOf", [schema])
        limits = [branch.get("maxLength") for branch in branches if branch.get("type") == "string"]
        yield (limits[0] if limits else None), value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from strings_of(_branch(schema, "object")["properties"][name], item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_of(schema["items"], item)


def _branch(schema: Schema, kind: str) -> Schema:
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == kind:
            return branch
    raise AssertionError(f"no {kind} in {schema}")


def lengths_in(schema: Any) -> set[int]:
    """Every maxLength a string of the schema has."""
    if isinstance(schema, list):
        return {n for item in schema for n in lengths_in(item)}
    if not isinstance(schema, dict):
        return set()
    found = {n for item in schema.values() for n in lengths_in(item)}
    if schema.get("type") == "string" and "maxLength" in schema:
        found.add(schema["maxLength"])
    return found


SCHEMAS = {type_: schemas.inlined(schemas.generated()[type_]) for type_ in sorted(MODELS)}


@pytest.fixture
def conn() -> Iterator[Connection]:
    """A connection to the shop's database inside a transaction rolled back at the end: the
    table below never outlives the test."""
    with engine_for("shop").connect() as connection, connection.begin() as transaction:
        yield connection
        transaction.rollback()


@pytest.mark.parametrize("type_", sorted(MODELS))
def test_every_body_a_contract_accepts_is_stored_and_read_back_unchanged(
    conn: Connection, type_: str
) -> None:
    schema = SCHEMAS[type_]
    table = Table(
        "contract_storage",
        MetaData(),
        Column("n", Integer, primary_key=True),
        Column("body", JSON, nullable=False),
        Column("text", Text, nullable=False),
        *(Column(f"text_{n}", String(n)) for n in sorted(lengths_in(schema))),
    )
    table.create(conn)
    written = 0

    @given(body=values_of(schema))
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def holds(body: dict[str, Any]) -> None:
        nonlocal written
        for limit, text in strings_of(schema, body):
            written += 1
            column = f"text_{limit}" if limit is not None else "text"
            row = {"n": written, "body": body, "text": text, column: text}
            conn.execute(table.insert(), row)
            stored = conn.execute(select(table).where(table.c.n == written)).one()
            assert stored.body == body
            assert stored.text == text
            assert getattr(stored, column) == text

    holds()
    assert written > 0
