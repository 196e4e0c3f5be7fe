"""Nothing the shop accepts fails further down (issue #11).

Each kind of input a component behind the edge cannot handle is refused at the edge, in the JSON
API and on the product page's form: digits that are not ASCII, text with control characters or
lone surrogates, integers out of bounds or not integers at all, bodies the JSON parser should not
read, and an Idempotency-Key sent again with another body. Through the Flask test client against
the real stack (PostgreSQL refuses NUL, so run it on the services stack too).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import TestResponse

from shop.tables import orders, stock
from tests.support.shop import basket_form, hidden_fields, into_basket, order_body, wait_for
from workers.messaging.database import engine_for

SKU = "CAS-002"
# One size per test below, so that no test's orders move the stock another one counts.
REFUSED, REUSED, FORM, CARRIED, *FUZZED = ("38", "39", "40", "41", "42", "43", "44", "45")
CARRIABLE_MESSAGE = "must not contain control characters or unpaired surrogates"


def available(size: str) -> int:
    with engine_for("shop").connect() as conn:
        query = select(stock.c.available).where(stock.c.sku == SKU, stock.c.size == size)
        return int(conn.execute(query).scalar_one())


def stored_texts(order_id: str) -> list[str]:
    """Every piece of text the shop stored for the order: customer, address and items."""
    columns = (orders.c.customer, orders.c.shipping_address, orders.c["items"])
    with engine_for("shop").connect() as conn:
        row = conn.execute(select(*columns).where(orders.c.id == order_id)).one()
    values = [*row.customer.values(), *row.shipping_address.values()]
    return [str(value) for value in [*values, *(v for item in row.items for v in item.values())]]


def shipped(client: FlaskClient, order_id: str) -> dict[str, Any] | None:
    """The order's view once it has shipped; None until then."""
    view: dict[str, Any] = client.get(f"/api/orders/{order_id}").get_json()
    return view if view["status"] == "SHIPPED" else None


def body_for(size: str, **changes: Any) -> dict[str, Any]:
    """A valid order of one pair, with ``changes`` by path: ``{"payment.cvc": "12"}``."""
    body = order_body(sku=SKU, size=size)
    for path, value in changes.items():
        *parents, name = path.replace("[0]", ".0").split(".")
        target: Any = body
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[name] = value
    return body


def post(client: FlaskClient, body: Any, key: str | None = None) -> TestResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/orders", data=raw, content_type="application/json", headers=headers)


def assert_refused(response: TestResponse, status: int, code: str) -> dict[str, str]:
    """The refusal's status and code, in the API's error shape; returns its fields."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code and error["message"]
    assert all(isinstance(value, str) for value in error["fields"].values())
    fields: dict[str, str] = error["fields"]
    return fields


def assert_refused_field(client: FlaskClient, body: Any, path: str) -> str:
    """The API refuses the body with a 422 naming ``path``, and reserves nothing."""
    before = available(REFUSED)
    fields = assert_refused(post(client, body), 422, "invalid_fields")
    assert path in fields, fields
    assert available(REFUSED) == before
    return fields[path]


# --- 1. Digits are ASCII 0-9 only --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("payment.exp_month", "²"),  # str.isdigit() says yes, int() raises: a 500 before
        ("payment.exp_year", "²⁰³¹"),
        ("payment.exp_month", "١٢"),  # Arabic-Indic 12: int() reads it
        ("payment.cvc", "١٢٣"),  # \d took it, and the gateway refuses it once sealed
        ("payment.card_number", "\uff14\uff12" * 8),  # fullwidth 4242…: Luhn passed it
        ("items[0].quantity", "٣"),
    ],
)
def test_a_digit_field_takes_ascii_digits_only(client: FlaskClient, path: str, value: str) -> None:
    assert_refused_field(client, body_for(REFUSED, **{path: value}), path)


# --- 2. Text a component cannot carry -----------------------------------------------------------

TEXT_FIELDS = {
    "customer.name": "Testy McTestface",
    "customer.email": "ada@example.com",
    "shipping_address.line1": "Keizersgracht 1",
    "shipping_address.city": "Amsterdam",
    "shipping_address.postal_code": "1015 CJ",
    "shipping_address.country": "NL",
    "items[0].sku": SKU,
    "items[0].size": REFUSED,
}
UNCARRIABLE = {
    "lone surrogate": "\ud83d",  # JSON escapes it; UTF-8 cannot encode it: the worker parked it
    "NUL": "\x00",  # PostgreSQL refuses it in text
    "escape": "\x1b",
    "C1 next line": "\x85",
    "line separator": "\u2028",  # breaks a line of a page or a mail as a line feed does
    "bidi override": "\u202e",  # shows a name or an address as other text than it is
}


@pytest.mark.parametrize("bad", UNCARRIABLE.values(), ids=UNCARRIABLE.keys())
@pytest.mark.parametrize("path", TEXT_FIELDS)
def test_every_text_field_refuses_what_a_component_cannot_carry(
    client: FlaskClient, path: str, bad: str
) -> None:
    good = TEXT_FIELDS[path]
    body = body_for(REFUSED, **{path: good[:1] + bad + good[1:]})

    assert assert_refused_field(client, body, path) == CARRIABLE_MESSAGE


def test_the_issues_examples_are_refused(client: FlaskClient) -> None:
    surrogate = b'"name": "Testy \\ud83d"'
    raw = json.dumps(body_for(REFUSED)).encode().replace(b'"name": "Ada Lovelace"', surrogate)
    assert surrogate in raw
    assert_refused_field(client, raw, "customer.name")
    assert_refused_field(client, body_for(REFUSED, **{"customer.name": "\x00"}), "customer.name")


def test_text_lengths_are_counted_in_characters(client: FlaskClient) -> None:
    # 100 characters that are 400 bytes of UTF-8 and 200 UTF-16 units: within the limit.
    accepted = post(client, body_for(REFUSED, **{"customer.name": "😀" * 100}))
    too_long = body_for(REFUSED, **{"customer.name": "😀" * 101})

    assert accepted.status_code == 202, accepted.get_json()
    order = client.get(f"/api/orders/{accepted.get_json()['id']}").get_json()
    assert order["customer"]["name"] == "😀" * 100
    assert assert_refused_field(client, too_long, "customer.name") == (
        "must be at most 100 characters"
    )


@pytest.mark.usefixtures("worker")
def test_the_widest_text_the_shop_accepts_is_carried_until_the_order_ships(
    client: FlaskClient,
) -> None:
    # Astral characters at the length limits, combining marks, right-to-left letters (a bidi
    # override is refused: it would show the name as other text), noncharacters and the last
    # code point: none is refused, and every component carries them.
    exotic = {
        "customer.name": "Zoë Łódźשם \uffff\U0010ffff " + "😀" * 86,
        "customer.email": "😀" * 188 + "@xn--ls8h.nl",
        "shipping_address.line1": "Keizersgracht 1 " + "\U0001d49c" * 184,
        "shipping_address.city": "A\u0301msterdam\ufeff",
        "shipping_address.postal_code": "\uff11\uff10\uff11\uff15 CJ",
    }
    body = body_for(CARRIED, **exotic)
    assert [len(exotic[path]) for path in TEXT_FIELDS if path in exotic][:3] == [100, 200, 200]

    response = post(client, body)

    assert response.status_code == 202, response.get_json()
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    assert (
        client.get(f"/api/orders/{order_id}").get_json()["customer"]["name"]
        == exotic["customer.name"]
    )


@pytest.mark.parametrize(
    "order_id", ["%00", "%C2%85", "%ED%A0%BD", "00000000-0000-4000-8000-00000000000%00"]
)
def test_an_order_id_no_database_can_look_up_names_no_order(
    client: FlaskClient, order_id: str
) -> None:
    # PostgreSQL refused the NUL even in a lookup: a 500 before, on the API and on the pages.
    assert_refused(client.get(f"/api/orders/{order_id}"), 404, "not_found")
    assert_refused(client.post(f"/api/orders/{order_id}/cancel"), 404, "not_found")
    for page in (f"/orders/{order_id}", f"/orders/{order_id}/events"):
        assert client.get(page).status_code == 404, page
    assert client.post(f"/orders/{order_id}/cancel").status_code in (400, 404)


@pytest.mark.parametrize("sku", ["%00", "RUN-001%00", "%C2%85", "R" * 33])
def test_a_product_code_no_database_can_look_up_names_no_product(
    client: FlaskClient, sku: str
) -> None:
    assert client.get(f"/products/{sku}").status_code == 404


# --- 3. Integers are integers, and bounded ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("payment.exp_year", 1000000000000000000000000000000),  # the gateway refused it sealed
        ("payment.exp_year", 2100),
        ("payment.exp_year", "99999"),
        ("payment.exp_month", True),
        ("payment.exp_month", 12.0),
        ("payment.exp_year", 1e300),
        ("items[0].quantity", 1.0),
        ("items[0].quantity", True),
        ("items[0].quantity", 10**30),
        ("items[0].size", True),
        ("items[0].size", 38.0),
    ],
)
def test_an_integer_field_takes_bounded_integers_only(
    client: FlaskClient, path: str, value: Any
) -> None:
    assert_refused_field(client, body_for(REFUSED, **{path: value}), path)


# --- 4. Bodies the parser cannot or should not read ---------------------------------------------

VALID = json.dumps(body_for(REFUSED)).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 1000 + b"]" * 1000,  # RecursionError, which is no ValueError: a 500 before
        b'{"a": ' * 1000 + b"1" + b"}" * 1000,
        VALID[:-1] + b', "x": ' + b"[" * 20 + b"]" * 20 + b"}",  # deeper than any checkout
        VALID.replace(b'"exp_month": 12', b'"exp_month": NaN'),
        VALID.replace(b'"exp_month": 12', b'"exp_month": Infinity'),
        VALID.replace(b'"exp_year": 2031', b'"exp_year": -Infinity'),
        VALID.replace(b"Ada Lovelace", b"Ada \xff"),  # not UTF-8
        VALID.replace(b"Ada Lovelace", b"Ada \xed\xa0\xbd"),  # an encoded surrogate
        VALID.decode().encode("utf-16"),  # JSON between systems is UTF-8 (RFC 8259)
        VALID[:-1] + b', "payment": {"card_number": "4000000000000002"}}',  # a key twice
        b'{"quantity": ' + b"9" * 5000 + b"}",  # more digits than Python will read
        VALID[:-1] + b', "note": 1e999}',  # Infinity once read, even in a field nobody reads
    ],
    ids=[
        "arrays-1000-deep",
        "objects-1000-deep",
        "20-deep",
        "NaN",
        "Infinity",
        "-Infinity",
        "invalid-utf8",
        "utf8-surrogate",
        "utf16",
        "duplicate-key",
        "5000-digits",
        "1e999",
    ],
)
def test_a_body_the_parser_should_not_read_is_a_400(client: FlaskClient, raw: bytes) -> None:
    before = available(REFUSED)

    assert_refused(post(client, raw), 400, "invalid_json")
    assert available(REFUSED) == before


# --- 5. An Idempotency-Key sent again with another body -----------------------------------------


def test_an_idempotency_key_sent_again_with_another_body_is_refused(client: FlaskClient) -> None:
    key = str(uuid.uuid4())
    before = available(REUSED)
    first = post(client, body_for(REUSED), key)
    assert first.status_code == 202

    other = post(client, body_for(REUSED, **{"items[0].quantity": 2}), key)

    fields = assert_refused(other, 422, "idempotency_key_reuse")
    assert set(fields) == {"Idempotency-Key"}
    assert available(REUSED) == before - 1  # the second order was not placed either


def test_the_same_body_sent_again_in_another_form_finds_the_first_order(
    client: FlaskClient,
) -> None:
    key = str(uuid.uuid4())
    first = post(client, body_for(REUSED), key)
    body = body_for(REUSED, **{"payment.exp_month": "12", "customer.name": " Ada Lovelace "})
    # The same order, its keys in another order and respaced: still the same request.
    again = json.dumps(dict(reversed(body.items())), indent=2).encode()

    second = post(client, again, key)

    assert first.status_code == second.status_code == 202
    assert second.get_json()["id"] == first.get_json()["id"]


def test_an_idempotency_key_with_control_characters_is_refused(client: FlaskClient) -> None:
    fields = assert_refused(post(client, body_for(REFUSED), "key\x01"), 422, "invalid_fields")

    assert set(fields) == {"Idempotency-Key"}


# --- The basket's forms: the same checks, shown at the field ------------------------------------


def fresh_form(client: FlaskClient) -> dict[str, str]:
    """One pair in the client's basket, and the basket's checkout form, valid."""
    return basket_form(client, SKU, FORM)


def error_at(html: str, field_id: str) -> str:
    error = re.search(rf'id="{field_id}-error"[^>]*>(.*?)</div>', html, re.DOTALL)
    assert error is not None, f"no error shown at {field_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", error.group(1))).strip()


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("exp_month", "²", "Expiry month must be a month from 1 to 12"),
        ("exp_year", "1000000000000000000000000000000", "Expiry year must be a year from"),
        ("cvc", "١٢٣", "Security code (CVC) must be 3 or 4 digits"),
        ("name", "Ada\x00", f"Full name {CARRIABLE_MESSAGE}"),
        ("line1", "Keizersgracht\x1b1", f"Street and number {CARRIABLE_MESSAGE}"),
    ],
)
def test_the_form_shows_the_same_refusals_at_the_field(
    client: FlaskClient, field: str, value: str, shown: str
) -> None:
    before = available(FORM)

    response = client.post("/basket/checkout", data={**fresh_form(client), field: value})

    assert response.status_code == 422
    assert shown in error_at(response.get_data(as_text=True), field)
    assert available(FORM) == before


@pytest.mark.parametrize("value", ["٣", "1_0", " +3"])  # int() reads them as 3, 10 and 3
def test_a_quantity_in_other_digits_is_refused_at_the_quantity(
    client: FlaskClient, value: str
) -> None:
    response = into_basket(client, SKU, FORM, value)

    assert response.status_code == 422
    shown = error_at(response.get_data(as_text=True), "quantity")
    assert "Enter a whole number of pairs, 1 to 10" in shown


def test_the_form_posted_again_with_other_details_says_so_and_can_place_it(
    client: FlaskClient,
) -> None:
    form = fresh_form(client)
    first = client.post("/basket/checkout", data=form)
    assert first.status_code == 303

    # Back in the browser: the basket filled again, the same form (and so the same key).
    into_basket(client, SKU, FORM, "2")
    refused = client.post("/basket/checkout", data=form)

    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "This form has already placed an order with other details" in html
    fresh_key = hidden_fields(html)["idempotency_key"]
    assert fresh_key != form["idempotency_key"]
    placed = client.post("/basket/checkout", data={**form, "idempotency_key": fresh_key})
    assert placed.status_code == 303
    assert placed.headers["Location"] != first.headers["Location"]


# --- Any text in every string field, odd numbers in every number field --------------------------

TEXT_PATHS = [*TEXT_FIELDS, "payment.card_number", "payment.cvc"]
NUMBER_PATHS = ["items[0].quantity", "payment.exp_month", "payment.exp_year", "items[0].size"]
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
odd_number = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**100),
    st.floats(),  # NaN and ±Infinity among them: json.dumps writes the literals
    st.booleans(),
    st.none(),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=5),
)


@st.composite
def checkout_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with up to two of its fields replaced: a text field by any text, a number
    field by any odd number. Few enough that some orders still go through."""
    paths = draw(st.lists(st.sampled_from([*TEXT_PATHS, *NUMBER_PATHS]), max_size=2, unique=True))
    changes = {path: draw(any_text if path in TEXT_PATHS else odd_number) for path in paths}
    return body_for(draw(st.sampled_from(FUZZED)), **changes)


@pytest.mark.usefixtures("worker")
def test_any_text_and_any_number_is_refused_whole_or_placed_carriable(client: FlaskClient) -> None:
    accepted: list[str] = []

    @given(body=checkout_bodies())
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def holds(body: dict[str, Any]) -> None:
        before = {size: available(size) for size in FUZZED}
        response = post(client, body, str(uuid.uuid4()))
        if response.status_code == 202:
            # Whatever was accepted, every component can store and send: UTF-8, no controls.
            accepted.append(response.get_json()["id"])
            for text in stored_texts(accepted[-1]):
                text.encode("utf-8")
                assert not re.search("[\x00-\x1f\x7f-\x9f]", text), ascii(text)
            return
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        assert_refused(response, response.status_code, response.get_json()["error"]["code"])
        # Nothing reserved (a background cancellation may give pairs back, never take them).
        assert all(available(size) >= count for size, count in before.items())

    holds()
    # And every component carried each accepted order to its end: shipped, nothing parked.
    assert accepted, "no example was accepted: the property says nothing about what goes through"
    for order_id in accepted:
        view = wait_for(lambda oid=order_id: shipped(client, oid), timeout_s=60)
        assert view["delayed"] is None, view
