"""A database busy for a moment answers 503 with Retry-After, not a 500 with a traceback; any
other database error stays a bug (500). The errors are the drivers' own, as SQLAlchemy wraps
them; the app is the shop's own factory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError

from shop.web import security


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    security.init_app(app)

    @app.post("/api/orders")
    def locked() -> str:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    @app.get("/orders/x")
    def locked_page() -> str:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    @app.post("/api/broken")
    def broken() -> str:
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    yield app


def test_a_locked_database_is_a_503_in_the_error_shape_with_retry_after(app: Flask) -> None:
    response = app.test_client().post("/api/orders")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "database_busy"


def test_a_page_says_it_in_a_sentence(app: Flask) -> None:
    response = app.test_client().get("/orders/x")

    assert (response.status_code, response.mimetype) == (503, "text/plain")
    assert "try again in a few seconds" in response.get_data(as_text=True)


def test_any_other_database_error_stays_a_500(app: Flask) -> None:
    app.testing = False  # a 500, as in production, rather than the exception raised in the test
    assert app.test_client().post("/api/broken").status_code == 500
