"""The PostgreSQL rows of docs/reliability.md's "Which faults retry", raised on a real server: a
serialization failure, a deadlock and a lost connection all retry (issue #12)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.support.stack import stack_name
from workers.messaging.database import engine_for
from workers.messaging.faults import is_transient

pytestmark = pytest.mark.skipif(stack_name() != "services", reason="PostgreSQL: services stack")


@pytest.fixture
def engine() -> Engine:
    """The shop's PostgreSQL database."""
    return engine_for("shop")


@pytest.fixture
def table(engine: Engine) -> Iterator[str]:
    """A table of two rows (ids 1 and 2), dropped after the test."""
    name = f"faults_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text(f"INSERT INTO {name} VALUES (1, 0), (2, 0)"))
    yield name
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))


def test_a_serialization_failure_retries(engine: Engine, table: str) -> None:
    serializable = engine.execution_options(isolation_level="SERIALIZABLE")
    with serializable.connect() as first, serializable.connect() as second:
        first.begin()
        second.begin()
        first.execute(text(f"SELECT n FROM {table} WHERE id = 1")).scalar_one()
        second.execute(text(f"SELECT n FROM {table} WHERE id = 1")).scalar_one()
        first.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
        first.commit()
        with pytest.raises(DBAPIError) as caught:
            second.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = 1"))
        second.rollback()
    assert getattr(caught.value.orig, "sqlstate", None) == "40001"
    assert is_transient(caught.value)


def test_a_deadlock_retries(engine: Engine, table: str) -> None:
    both_locked = threading.Barrier(2)
    failures: list[BaseException] = []

    def lock(first: int, then: int) -> None:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
            conn.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = {first}"))
            both_locked.wait(timeout=10)
            try:
                conn.execute(text(f"UPDATE {table} SET n = n + 1 WHERE id = {then}"))
            except DBAPIError as exc:  # PostgreSQL picks one of the two as the victim
                failures.append(exc)
            transaction.rollback()

    threads = [
        threading.Thread(target=lock, args=(1, 2)),
        threading.Thread(target=lock, args=(2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(failures) == 1, failures
    assert getattr(getattr(failures[0], "orig", None), "sqlstate", None) == "40P01"
    assert is_transient(failures[0])


def test_a_lost_connection_retries(engine: Engine) -> None:
    with engine.connect() as doomed, engine.connect() as killer:
        pid = doomed.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as caught:
            doomed.execute(text("SELECT 1"))
    assert is_transient(caught.value)
