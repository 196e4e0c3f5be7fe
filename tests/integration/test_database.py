"""Write transactions from many threads of one process: each commits, none waits on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, func, insert, select

from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import utcnow
from workers.messaging.tables import dead_letter_actions

THREADS = 8
WRITES_EACH = 25


@pytest.fixture()
def impatient_engine() -> Iterator[Engine]:
    """On SQLite: connections that fail at once ("database is locked") instead of waiting for
    the write lock, so a write that had to wait for another thread of this process shows."""
    engine = engine_for("operations")
    if engine.dialect.name != "sqlite":
        yield engine
        return

    def no_patience(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    engine.dispose()
    event.listen(engine, "connect", no_patience)
    try:
        yield engine
    finally:
        event.remove(engine, "connect", no_patience)
        engine.dispose()


def test_concurrent_write_transactions_of_one_process_take_turns(
    impatient_engine: Engine,
) -> None:
    batch = str(uuid.uuid4())

    def write(_: int) -> None:
        for _ in range(WRITES_EACH):
            with transaction("operations") as conn:
                conn.execute(
                    insert(dead_letter_actions),
                    {
                        "dead_letter_id": batch,
                        "action": "test",
                        "outcome": "written",
                        "at": utcnow(),
                    },
                )

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(write, range(THREADS)))

    query = select(func.count()).where(dead_letter_actions.c.dead_letter_id == batch)
    with impatient_engine.connect() as conn:
        assert conn.execute(query).scalar_one() == THREADS * WRITES_EACH
    with transaction("operations") as conn:
        conn.execute(
            delete(dead_letter_actions).where(dead_letter_actions.c.dead_letter_id == batch)
        )


def test_a_database_error_shows_its_statement_without_the_values_bound_to_it() -> None:
    # An error's text lands in logs and dead letters: a customer's data bound to the statement
    # would land there with it (workers.messaging.database.HIDE_PARAMETERS).
    from sqlalchemy.exc import IntegrityError

    from workers.messaging.tables import inbox

    row = {
        "event_id": str(uuid.uuid4()),
        "consumer": "Zoë Quist, 9 Ærøgade",
        "attempts": 1,
        "processed_at": utcnow(),
    }
    with transaction("payments") as conn:
        conn.execute(insert(inbox), row)
    with pytest.raises(IntegrityError) as raised, transaction("payments") as conn:
        conn.execute(insert(inbox), row)

    text = str(raised.value)
    assert "INSERT INTO" in text and "[SQL parameters hidden due to hide_parameters=True]" in text
    if raised.value.orig.__class__.__module__.startswith("sqlite3"):
        assert "Quist" not in text and row["event_id"] not in text
    # PostgreSQL's own DETAIL names the duplicate key's values; a dead letter's text that
    # quotes them loses them at the customer's erasure (erasure.redact), as it does any quote.
