"""Rate limits at the edge (issue #17): failed admin logins and checkouts per client, with
flask-limiter on the deployment's store (the embedded Redis, or each process's memory beside
RabbitMQ). The suites lift the limits (tests/support/stack.py); each test here builds an app
with them on, and its clients come from addresses of their own, so counts never meet."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.settings import get_settings
from tests.support.shop import basket_form, order_body

LIMITS = "admin_login=5/minute;checkout=3/minute"


def basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"ops:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def an_address() -> str:
    """An address no other test uses (the counts of the embedded Redis last the session)."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


@pytest.fixture
def limited_app(setting: Callable[[str, str], None]) -> Iterator[Callable[..., Flask]]:
    from shop import create_app
    from shop.web import limits

    built: list[Flask] = []

    def build(**env: str) -> Flask:
        for name, value in {"SHOESHOP_RATE_LIMITS": LIMITS, **env}.items():
            setting(name, value)
        built.append(create_app({"TESTING": True}))
        return built[-1]

    yield build
    for app in built:
        limits.close(app)


def client_from(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def assert_limited(response: Any, *, api: bool) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    if api:
        error = response.get_json()["error"]
        assert set(error) == {"code", "message", "fields"}
        assert error["code"] == "too_many_requests"


def test_the_sixth_failed_admin_login_in_a_minute_is_refused_with_retry_after(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app()
    guesser = client_from(app, an_address())

    for _ in range(5):
        assert guesser.get("/api/admin/dead-letters", headers=basic("guess")).status_code == 401

    assert_limited(guesser.get("/api/admin/dead-letters", headers=basic("guess")), api=True)
    assert_limited(guesser.get("/admin/dead-letters", headers=basic("guess")), api=False)
    # Spent: the right password from the same client waits too ...
    right = basic(get_settings().admin_password)
    assert_limited(guesser.get("/api/admin/dead-letters", headers=right), api=True)
    # ... while another client is not touched.
    assert (
        client_from(app, an_address()).get("/api/admin/dead-letters", headers=right).status_code
        == 200
    )


def test_successful_admin_logins_are_not_counted(limited_app: Callable[..., Flask]) -> None:
    app = limited_app()
    operator = client_from(app, an_address())
    right = basic(get_settings().admin_password)

    assert all(
        operator.get("/api/admin/dead-letters", headers=right).status_code == 200 for _ in range(12)
    )


def test_checkouts_per_client_are_limited_across_the_api_and_the_form(
    limited_app: Callable[..., Flask],
) -> None:
    app = limited_app()
    shopper = client_from(app, an_address())

    for _ in range(3):
        assert shopper.post("/api/orders", json=order_body(sku="TRL-002")).status_code == 202
    assert_limited(shopper.post("/api/orders", json=order_body(sku="TRL-002")), api=True)
    # The basket's checkout form counts in the same limit.
    form = basket_form(shopper, "TRL-002", "40")
    assert_limited(shopper.post("/basket/checkout", data=form), api=False)
    # Reading is not limited, and another client still checks out.
    assert shopper.get("/api/products").status_code == 200
    other = client_from(app, an_address())
    assert other.post("/api/orders", json=order_body(sku="TRL-002")).status_code == 202


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    limited_app: Callable[..., Flask],
) -> None:
    proxy = an_address()
    untrusted = limited_app()
    spoofer = client_from(untrusted, an_address())
    for attempt in range(6):  # a new X-Forwarded-For each time: still one client
        response = spoofer.get(
            "/api/admin/dead-letters",
            headers={**basic("guess"), "X-Forwarded-For": an_address()},
        )
        assert response.status_code == (429 if attempt == 5 else 401)

    behind = client_from(limited_app(SHOESHOP_TRUSTED_PROXIES=proxy), proxy)
    customer, forged = an_address(), an_address()
    for _ in range(5):
        behind.get(
            "/api/admin/dead-letters",
            headers={**basic("guess"), "X-Forwarded-For": f"{forged}, {customer}"},
        )
    # The proxy appended the customer's address; what the client wrote before it is ignored.
    refused = behind.get(
        "/api/admin/dead-letters",
        headers={**basic("guess"), "X-Forwarded-For": f"{an_address()}, {customer}"},
    )
    assert_limited(refused, api=True)
    someone_else = behind.get(
        "/api/admin/dead-letters",
        headers={**basic("guess"), "X-Forwarded-For": an_address()},
    )
    assert someone_else.status_code == 401
