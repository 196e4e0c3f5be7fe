"""The shop's transactions take the rows they share in one order: stock rows by (sku, size),
then order_counts rows by (status, reason) (shop.readmodel). In the order the code once reached
them, a checkout and three status changes deadlocked on PostgreSQL under a burst.

On a real SQLite database of the shop's tables, the statements each step sends are recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event, insert

from shop import checkout, readmodel
from shop.tables import metadata as shop_metadata
from shop.tables import products, stock
from shop.validation import parse_checkout
from tests.support.shop import order_body
from tests.unit.test_order_view import notice, placed
from workers.messaging.tables import kit_metadata

ORDER = "6b0c1f8e-0a51-4c33-9a3c-5d1b7f0e2a11"
SKUS = ("RUN-001", "TRL-002")
SIZES = ("41", "42")


@pytest.fixture
def recorded() -> Iterator[tuple[Connection, list[tuple[str, Any]]]]:
    engine = create_engine("sqlite://")
    kit_metadata.create_all(engine)
    shop_metadata.create_all(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((" ".join(sql.split()), params))

    with engine.begin() as conn:
        for sku in SKUS:
            conn.execute(
                insert(products),
                {"sku": sku, "name": sku, "brand": "b", "colour": "c", "hex": "#000000",
                 "description": "d", "price_cents": 100, "currency": "EUR", "position": 0},
            )  # fmt: skip
            for size in SIZES:
                # One pair held for the order placed below, as its checkout would have.
                conn.execute(
                    insert(stock), {"sku": sku, "size": size, "available": 5, "reserved": 1}
                )
        statements.clear()
        yield conn, statements
    engine.dispose()


def touched(statements: list[tuple[str, Any]]) -> list[tuple[str, ...]]:
    """(table, key…) of each stock and order_counts row written, in the order sent."""
    rows: list[tuple[str, ...]] = []
    for sql, params in statements:
        if re.match(r"UPDATE stock\b", sql):
            sku = next(value for value in params if value in SKUS)
            size = next(value for value in params if value in SIZES)
            rows.append(("stock", sku, size))
        elif "INTO order_counts" in sql:
            rows.append(("order_counts", str(params[0]), str(params[1])))
    return rows


def test_a_status_change_settles_stock_before_counting_and_counts_in_key_order(
    recorded: tuple[Connection, list[tuple[str, Any]]],
) -> None:
    conn, statements = recorded
    for step in (
        placed(ORDER),
        notice(ORDER, "PAYMENT_PENDING", 1, []),
        notice(ORDER, "PAID", 2, []),
    ):
        readmodel.apply(conn, step, live=True)
    statements.clear()

    readmodel.apply(conn, notice(ORDER, "SHIPPED", 3, []), live=True)

    assert touched(statements) == [
        ("stock", "RUN-001", "42"),
        ("order_counts", "PAID", ""),  # "PAID" < "SHIPPED": the old count first here
        ("order_counts", "SHIPPED", ""),
    ]


def test_a_status_change_counts_in_key_order_whichever_is_the_new_status(
    recorded: tuple[Connection, list[tuple[str, Any]]],
) -> None:
    conn, statements = recorded
    readmodel.apply(conn, placed(ORDER), live=True)
    statements.clear()

    readmodel.apply(conn, notice(ORDER, "PAYMENT_PENDING", 1, []), live=True)

    # "PAYMENT_PENDING" < "PLACED": the new count first.
    assert touched(statements) == [
        ("order_counts", "PAYMENT_PENDING", ""),
        ("order_counts", "PLACED", ""),
    ]


def test_a_checkout_reserves_its_lines_in_sku_and_size_order(
    recorded: tuple[Connection, list[tuple[str, Any]]],
) -> None:
    conn, statements = recorded
    body = order_body(sku="TRL-002", size="42")
    body["items"] += [
        {"sku": "RUN-001", "size": "42", "quantity": 1},
        {"sku": "TRL-002", "size": "41", "quantity": 1},
    ]
    request = parse_checkout(body, date(2026, 11, 30))

    checkout._reserve(conn, request)

    assert touched(statements) == [
        ("stock", "RUN-001", "42"),
        ("stock", "TRL-002", "41"),
        ("stock", "TRL-002", "42"),
    ]
