"""Which faults retry and which park (issue #12): docs/reliability.md's table, row by row.

Each fault is raised for real where that is cheap here (a SQLite file another connection holds
locked, a Redis and a broker nobody listens for); the PostgreSQL rows are raised on a real server
in tests/integration/test_faults_postgres.py, and the rows below only check that the wrapping
SQLAlchemy gives them is read the same way.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis
from kombu import Connection as BrokerConnection
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, text
from sqlalchemy.exc import DBAPIError, OperationalError

from workers.messaging import inbox
from workers.messaging.errors import (
    GatewayUnavailable,
    InvalidEvent,
    InvariantViolation,
    UnknownEventType,
)
from workers.messaging.faults import is_transient
from workers.messaging.tables import kit_metadata
from workers.orders.handlers import OrderNotYetKnown
from workers.orders.store import ConcurrencyConflict
from workers.payments.gateway import GatewayRejected
from workers.shipping.store import ParcelRace

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
Raise = Callable[[Path], BaseException]


def table_rows() -> dict[str, str]:
    """Fault → outcome, from the table under "Which faults retry"."""
    section = DOC.read_text(encoding="utf-8").split("### Which faults retry", 1)[1]
    rows = re.findall(r"^\| ([^|]+?) \| [^|]+ \| (retry|park|duplicate) \|$", section, re.M)
    return dict(rows)


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except BaseException as exc:
        return exc
    raise AssertionError("the fault did not happen")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sqlite_locked(tmp: Path) -> BaseException:
    path = tmp / "locked.db"
    holder = create_engine(f"sqlite:///{path}")
    waiter = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with holder.connect() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.commit()
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        with waiter.connect() as other:
            locked = raised(lambda: other.execute(text("INSERT INTO t VALUES (1)")))
    assert "database is locked" in str(locked)
    return locked


def sqlite_no_such_table(tmp: Path) -> BaseException:
    with create_engine(f"sqlite:///{tmp / 'empty.db'}").connect() as conn:
        return raised(lambda: conn.execute(text("SELECT * FROM missing")))


def unique_violation(tmp: Path) -> BaseException:
    rows = Table("rows", MetaData(), Column("id", String(8), primary_key=True))
    engine = create_engine(f"sqlite:///{tmp / 'unique.db'}")
    rows.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(rows), {"id": "a"})
        return raised(lambda: conn.execute(insert(rows), {"id": "a"}))


def wrapped(driver_error: Exception) -> DBAPIError:
    """A driver's error as SQLAlchemy hands it on (the statement is never shown)."""
    return OperationalError("UPDATE …", {}, driver_error)


def connection_lost(_tmp: Path) -> BaseException:
    return OperationalError("SELECT 1", {}, psycopg.OperationalError("closed"), True)


FAULTS: dict[str, Raise] = {
    "SQLite database locked by another connection": sqlite_locked,
    "PostgreSQL serialization failure (40001)": lambda _: wrapped(
        psycopg.errors.SerializationFailure("could not serialize access")
    ),
    "PostgreSQL deadlock (40P01)": lambda _: wrapped(
        psycopg.errors.DeadlockDetected("deadlock detected")
    ),
    "Database connection lost": connection_lost,
    "Broker unreachable": lambda _: raised(
        lambda: BrokerConnection(f"amqp://guest:guest@127.0.0.1:{free_port()}//").ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=2
        )
    ),
    "Redis unreachable": lambda _: raised(
        lambda: redis.Redis(port=free_port(), socket_connect_timeout=2).ping()
    ),
    "Gateway 5xx or timeout": lambda _: GatewayUnavailable("POST /v1/charges: 503"),
    "Order stream moved on (optimistic concurrency)": lambda _: ConcurrencyConflict("moved"),
    "Event overtook the order it is about": lambda _: OrderNotYetKnown("not yet"),
    "A parcel row added by another event first": lambda _: ParcelRace("meanwhile"),
    "Contract violation": lambda _: InvalidEvent("order_id: Expected `str`"),
    "Domain invariant broken": lambda _: InvariantViolation("no charge to refund"),
    "SQLite error other than a lock (no such table)": sqlite_no_such_table,
    "Unique or foreign key violation": unique_violation,
    "Any other exception (a bug)": lambda _: raised(lambda: {}["payment_id"]),
}
# Faults in the same row (the table names them together): each is read as its row says.
ALSO: dict[str, list[BaseException]] = {
    "Contract violation": [UnknownEventType("no subscriber")],
    "Domain invariant broken": [GatewayRejected("refund refused")],
    "Any other exception (a bug)": [TypeError("unsupported operand"), AttributeError("x")],
}


def test_the_table_and_this_test_name_the_same_faults() -> None:
    assert set(table_rows()) == {*FAULTS, "Racing inbox insert (the same event twice)"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_retries_or_parks_as_the_table_says(fault: str, tmp_path: Path) -> None:
    outcome = table_rows()[fault]
    for exc in [FAULTS[fault](tmp_path), *ALSO.get(fault, [])]:
        assert is_transient(exc) is (outcome == "retry"), f"{fault}: {exc!r}"


def test_an_event_claimed_twice_is_a_duplicate_not_a_fault(tmp_path: Path) -> None:
    assert table_rows()["Racing inbox insert (the same event twice)"] == "duplicate"
    engine = create_engine(f"sqlite:///{tmp_path / 'inbox.db'}")
    kit_metadata.create_all(engine)
    claims = []
    for _ in range(2):
        with engine.begin() as conn:
            claims.append(inbox.claim(conn, "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11", "orders.x"))
    assert claims == [True, False]
