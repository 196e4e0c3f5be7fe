"""The shop's HTML pages driven through Flask's test client, CSRF on, against the real stack."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from tests.support.shop import filled_form, hidden_fields

STATUSES = {"PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"}
ORDER_URL = re.compile(r"/orders/([0-9a-f-]{36})$")


def _fresh_form(client: FlaskClient, sku: str) -> dict[str, str]:
    """What a browser sends back: the page's hidden fields, to which a test adds the rest."""
    page = client.get(f"/products/{sku}")
    assert page.status_code == 200
    return hidden_fields(page.get_data(as_text=True))


def _available(client: FlaskClient, sku: str, size: str) -> int:
    products: list[dict[str, Any]] = client.get("/api/products").get_json()
    product = next(p for p in products if p["sku"] == sku)
    return int(next(s["available"] for s in product["sizes"] if s["size"] == size))


def _error_at_field(html: str, field_id: str) -> str:
    """The error text shown under a field, after checking the input points at it."""
    control = re.search(rf'<(?:input|select)[^>]*\bid="{field_id}"[^>]*>', html)
    assert control is not None, f"no control with id {field_id}"
    described_by = re.search(r'aria-describedby="([^"]*)"', control.group(0))
    assert described_by is not None and f"{field_id}-error" in described_by.group(1).split()
    assert 'aria-invalid="true"' in control.group(0)
    error = re.search(rf'id="{field_id}-error"[^>]*>(.*?)</div>', html, re.DOTALL)
    assert error is not None, f"no error shown at {field_id}"
    return re.sub(r"<[^>]+>", " ", error.group(1))


def test_the_catalogue_lists_every_shoe_with_its_price(client: FlaskClient) -> None:
    response = client.get("/")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert len(re.findall(r'data-sku="[^"]+"', html)) >= 12
    assert len(re.findall(r"€\d+\.\d\d", html)) >= 12
    assert "€129.00" in html  # Ridge Runner, priced in integer cents as 12900
    assert 'href="/products/TRL-001"' in html


def test_a_product_page_shows_its_sizes_and_the_checkout_form(client: FlaskClient) -> None:
    response = client.get("/products/RUN-001")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tempo One" in html
    assert re.search(r'<select[^>]*\bid="size"', html)
    assert re.search(r'<option[^>]*value="42"', html)
    for field_id in (
        "quantity",
        "name",
        "email",
        "line1",
        "city",
        "postal_code",
        "country",
        "card_number",
        "exp_month",
        "exp_year",
        "cvc",
    ):
        assert f'<label for="{field_id}"' in html, f"{field_id} has no label"
    assert "Street and number" in html
    assert hidden_fields(html)["csrf_token"]


def test_bad_email_and_card_rerender_with_each_error_at_its_field_and_reserve_nothing(
    client: FlaskClient,
) -> None:
    sku, size = "SAN-002", "44"
    before = _available(client, sku, size)
    form = filled_form(
        _fresh_form(client, sku), size=size, email="not-an-email", card_number="1234"
    )

    response = client.post(f"/products/{sku}", data=form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a valid email address" in _error_at_field(html, "email")
    assert "12 to 19 digits" in _error_at_field(html, "card_number")
    assert 'role="alert"' in html
    assert 'value="not-an-email"' in html  # what the shopper typed is kept
    assert _available(client, sku, size) == before


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    form = filled_form(_fresh_form(client, "RUN-002"), size="41")
    del form["csrf_token"]

    response = client.post("/products/RUN-002", data=form)

    assert response.status_code == 400


def test_a_valid_order_redirects_to_its_tracking_page(client: FlaskClient) -> None:
    form = filled_form(_fresh_form(client, "KID-001"), size="38")

    response = client.post("/products/KID-001", data=form)

    assert response.status_code == 303
    match = ORDER_URL.search(response.headers["Location"])
    assert match is not None, response.headers["Location"]
    page = client.get(f"/orders/{match.group(1)}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    status = re.search(r'<code id="order-status" data-status="([A-Z_]+)">([A-Z_]+)</code>', html)
    assert status is not None
    assert status.group(1) == status.group(2)
    assert status.group(1) in STATUSES
    assert "Puddle Jumper" in html
    assert "ending in 4242" in html


def test_the_same_form_posted_twice_places_one_order(client: FlaskClient) -> None:
    form = filled_form(_fresh_form(client, "KID-001"), size="39")

    first = client.post("/products/KID-001", data=form)
    second = client.post("/products/KID-001", data=form)

    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]


def test_an_unknown_product_is_not_found(client: FlaskClient) -> None:
    response = client.get("/products/NOPE-999")

    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_an_unknown_order_is_not_found(client: FlaskClient) -> None:
    response = client.get("/orders/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
