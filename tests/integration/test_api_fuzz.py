"""The JSON API against its own OpenAPI description, fuzzed through WSGI: no 5xx, tidy 4xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from sqlalchemy import func, select

from shop.tables import orders, stock
from workers.messaging.database import engine_for

# Enough to walk every operation's edges in well under a minute; CI runs the same bound.
# (schemathesis' own pytest plugin does not run on pytest 9 yet, so hypothesis drives its
# strategies directly.)
MAX_EXAMPLES = 100
OPERATIONS = [
    ("GET", "/api/products"),
    ("POST", "/api/orders"),
    ("GET", "/api/orders/{order_id}"),
    ("POST", "/api/orders/{order_id}/cancel"),
]


def shop_state() -> tuple[int, dict[tuple[str, str], int]]:
    """How many orders exist and the pairs available of each size."""
    with engine_for("shop").connect() as conn:
        count = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        rows = conn.execute(select(stock.c.sku, stock.c.size, stock.c.available)).all()
    return int(count), {(row.sku, row.size): int(row.available) for row in rows}


def test_the_description_names_every_operation(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()

    assert spec["openapi"].startswith("3.")
    assert {path for _, path in OPERATIONS} == set(spec["paths"])
    assert "Error" in spec["components"]["schemas"]


def check_refusal(case: Case, status: int, body: Any, before: tuple[int, Any]) -> None:
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    assert all(isinstance(v, str) for v in error["fields"].values())
    if case.method == "POST" and case.path == "/api/orders":
        orders_after, available_after = shop_state()
        orders_before, available_before = before
        # A rejected checkout placed no order and took no pair off any shelf.
        assert orders_after == orders_before, status
        assert all(available_after[key] >= n for key, n in available_before.items())


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_never_fails_and_refuses_in_the_error_shape(
    app: Flask, method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/openapi.json", app)[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def the_api_holds(case: Case) -> None:
        before = shop_state()
        response = case.call()
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if 400 <= response.status_code < 500:
            check_refusal(case, response.status_code, response.json(), before)

    the_api_holds()
