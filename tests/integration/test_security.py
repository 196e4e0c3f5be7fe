"""Hardening at the shop's edge: headers, CSRF, request size, and production configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from config.settings import ConfigurationError, get_settings
from tests.support.shop import order_body


@pytest.fixture()
def production_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("SHOESHOP_ENV", "production")
    monkeypatch.delenv("SHOESHOP_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("path", ["/", "/products/RUN-001", "/api/products", "/healthz"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_a_100_kb_api_body_is_refused_with_413_in_the_error_shape(client: FlaskClient) -> None:
    body = order_body()
    body["customer"]["name"] = "A" * 100_000

    response = client.post("/api/orders", json=body)

    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "request_entity_too_large"
    assert error["message"]
    assert error["fields"] == {}


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api", "/api/"])
def test_an_unknown_api_path_answers_404_in_the_error_shape(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert set(response.get_json()["error"]) == {"code", "message", "fields"}


def test_a_page_path_that_only_starts_like_the_api_keeps_the_page_404(client: FlaskClient) -> None:
    response = client.get("/apinothing")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_wrong_method_on_the_api_answers_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/api/products")

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_pages_keep_their_html_errors(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_the_checkout_form_requires_its_csrf_token(client: FlaskClient) -> None:
    response = client.post("/products/RUN-001", data={"size": "42", "quantity": "1"})

    assert response.status_code == 400


def test_production_refuses_to_start_without_a_secret_key(
    production_env: pytest.MonkeyPatch,
) -> None:
    from shop import create_app

    with pytest.raises(ConfigurationError, match="SHOESHOP_SECRET_KEY"):
        create_app({"TESTING": True})


def test_production_starts_with_a_secret_key(production_env: pytest.MonkeyPatch) -> None:
    production_env.setenv("SHOESHOP_SECRET_KEY", "a-real-secret-from-the-vault-of-forty-chars")
    production_env.setenv("SHOESHOP_ADMIN_PASSWORD", "a-real-admin-password")
    get_settings.cache_clear()
    from shop import create_app

    app = create_app({"TESTING": True})

    assert app.config["SECRET_KEY"] == "a-real-secret-from-the-vault-of-forty-chars"
