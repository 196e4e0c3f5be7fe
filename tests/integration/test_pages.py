"""The shop's HTML pages driven through Flask's test client, CSRF on, against the real stack."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from shop.tables import stock
from tests.support.shop import basket_form, hidden_fields, into_basket
from workers.messaging.database import transaction

STATUSES = {"PLACED", "PAYMENT_PENDING", "PAID", "SHIPPED", "CANCELLED"}
ORDER_URL = re.compile(r"/orders/([0-9a-f-]{36})$")


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


def test_a_product_page_shows_its_sizes_and_the_form_into_the_basket(client: FlaskClient) -> None:
    response = client.get("/products/RUN-001")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tempo One" in html
    assert re.search(r'<select[^>]*\bid="size"', html)
    assert re.search(r'<option[^>]*value="42"', html)
    assert '<label for="quantity"' in html
    assert "Add to basket" in html
    assert hidden_fields(html, ("csrf_token",))["csrf_token"]


def test_the_basket_page_shows_the_checkout_form(client: FlaskClient) -> None:
    into_basket(client, "RUN-001", "42")

    html = client.get("/basket").get_data(as_text=True)

    for field_id in (
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


def test_pairs_added_twice_make_one_line_and_the_header_counts_them(client: FlaskClient) -> None:
    for quantity in ("2", "3"):
        assert into_basket(client, "RUN-002", "41", quantity).status_code == 303
    assert into_basket(client, "TRL-001", "42").status_code == 303

    html = client.get("/basket").get_data(as_text=True)

    assert len(re.findall(r'<tr id="line-\d+"', html)) == 2
    assert 'data-sku="RUN-002" data-size="41" data-quantity="5"' in html
    assert re.search(r'id="basket-count">6<', html)
    assert re.search(r'id="basket-count">6<', client.get("/").get_data(as_text=True))


def test_a_line_can_change_its_quantity_or_go(client: FlaskClient) -> None:
    into_basket(client, "RUN-002", "41")
    into_basket(client, "TRL-001", "42")
    token = hidden_fields(client.get("/basket").get_data(as_text=True), ("csrf_token",))

    first = {**token, "sku": "RUN-002", "size": "41"}
    changed = client.post("/basket/line", data={**first, "quantity": "4", "action": "update"})
    removed = client.post(
        "/basket/line", data={**token, "sku": "TRL-001", "size": "42", "action": "remove"}
    )
    refused = client.post("/basket/line", data={**first, "quantity": "11", "action": "update"})

    assert changed.status_code == removed.status_code == 303
    assert refused.status_code == 422
    assert "Choose 1 to 10 pairs" in refused.get_data(as_text=True)
    html = client.get("/basket").get_data(as_text=True)
    assert len(re.findall(r'<tr id="line-\d+"', html)) == 1
    assert 'data-sku="RUN-002" data-size="41" data-quantity="4"' in html


def test_a_page_older_than_the_basket_changes_the_pair_it_shows_or_nothing(
    client: FlaskClient,
) -> None:
    for sku, size in (("SAN-001", "40"), ("SAN-002", "40"), ("CRT-001", "40")):
        into_basket(client, sku, size)
    token = hidden_fields(client.get("/basket").get_data(as_text=True), ("csrf_token",))
    remove = {**token, "action": "remove"}
    # Another tab took the first line out; this tab's page still shows three.
    client.post("/basket/line", data={**remove, "sku": "SAN-001", "size": "40"})

    client.post("/basket/line", data={**remove, "sku": "SAN-002", "size": "40"})
    client.post("/basket/line", data={**remove, "sku": "SAN-001", "size": "40"})  # gone already

    html = client.get("/basket").get_data(as_text=True)
    assert re.findall(r'<tr id="line-\d+" data-sku="([^"]+)"', html) == ["CRT-001"]


def test_more_pairs_than_are_left_are_refused_at_the_quantity(client: FlaskClient) -> None:
    left = _available(client, "SAN-002", "45")

    response = into_basket(client, "SAN-002", "45", str(min(left + 1, 10)))

    if left + 1 <= 10:
        assert response.status_code == 409
        assert "left in size 45" in response.get_data(as_text=True)


def test_bad_email_and_card_rerender_with_each_error_at_its_field_and_reserve_nothing(
    client: FlaskClient,
) -> None:
    sku, size = "SAN-002", "44"
    before = _available(client, sku, size)
    form = basket_form(client, sku, size, email="not-an-email", card_number="1234")

    response = client.post("/basket/checkout", data=form)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a valid email address" in _error_at_field(html, "email")
    assert "12 to 19 digits" in _error_at_field(html, "card_number")
    assert 'role="alert"' in html
    assert 'value="not-an-email"' in html  # what the shopper typed is kept
    assert _available(client, sku, size) == before
    assert 'data-sku="SAN-002"' in html  # the basket is kept too


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    form = basket_form(client, "RUN-002", "41")
    del form["csrf_token"]

    response = client.post("/basket/checkout", data=form)

    assert response.status_code == 400


def test_an_empty_basket_places_nothing(client: FlaskClient) -> None:
    form = basket_form(client, "RUN-002", "41")
    token = hidden_fields(client.get("/basket").get_data(as_text=True), ("csrf_token",))
    client.post("/basket/line", data={**token, "sku": "RUN-002", "size": "41", "action": "remove"})

    response = client.post("/basket/checkout", data=form)

    assert response.status_code == 422
    assert "Your basket is empty" in response.get_data(as_text=True)


def test_a_basket_of_several_lines_is_one_order_and_empties(client: FlaskClient) -> None:
    into_basket(client, "KID-001", "38", "2")
    form = basket_form(client, "TRL-001", "43")
    before = {("KID-001", "38"): _available(client, "KID-001", "38")}

    response = client.post("/basket/checkout", data=form)

    assert response.status_code == 303
    match = ORDER_URL.search(response.headers["Location"])
    assert match is not None, response.headers["Location"]
    order = client.get(f"/api/orders/{match.group(1)}").get_json()
    assert [(i["sku"], i["size"], i["quantity"]) for i in order["items"]] == [
        ("KID-001", "38", 2),
        ("TRL-001", "43", 1),
    ]
    assert _available(client, "KID-001", "38") == before[("KID-001", "38")] - 2
    assert re.search(r'id="basket-count">0<', client.get("/basket").get_data(as_text=True))


def test_a_line_short_of_stock_reserves_no_line(client: FlaskClient) -> None:
    into_basket(client, "KID-001", "39")
    form = basket_form(client, "BOT-002", "38")
    before = _available(client, "KID-001", "39")
    # Someone bought every pair of the second line meanwhile.
    sold_out = (stock.c.sku == "BOT-002") & (stock.c.size == "38")
    with transaction("shop") as conn:
        left = conn.execute(select(stock.c.available).where(sold_out)).scalar_one()
        conn.execute(update(stock).where(sold_out).values(available=0))
    try:
        response = client.post("/basket/checkout", data=form)
    finally:
        with transaction("shop") as conn:
            conn.execute(update(stock).where(sold_out).values(available=left))

    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'id="line-1-error"' in html and "Not enough pairs left in size 38" in html
    assert _available(client, "KID-001", "39") == before  # the first line was not reserved


def test_a_valid_order_redirects_to_its_tracking_page(client: FlaskClient) -> None:
    form = basket_form(client, "KID-001", "38")

    response = client.post("/basket/checkout", data=form)

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
    form = basket_form(client, "KID-001", "39")

    first = client.post("/basket/checkout", data=form)
    second = client.post("/basket/checkout", data=form)

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
