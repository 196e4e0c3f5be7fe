"""The HMAC that tells an Idempotency-Key's retry from a reuse of the key for another order."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import date
from typing import Any

import pytest

from shop.checkout import body_hmac, same_body
from shop.validation import CheckoutRequest, parse_checkout
from tests.support.shop import GOOD_CARD, order_body

TODAY = date(2026, 11, 26)
SECRET = "a-secret-key"


def request_for(**payment: Any) -> CheckoutRequest:
    body = order_body()
    body["payment"].update(payment)
    return parse_checkout(body, TODAY)


def test_the_same_request_has_the_same_hmac() -> None:
    assert body_hmac(request_for(), SECRET) == body_hmac(request_for(), SECRET)


def test_the_same_order_written_another_way_has_the_same_hmac() -> None:
    body = order_body()
    body["payment"].update(exp_month="12", exp_year=31, card_number="4242 4242 4242 4242")
    body["customer"]["name"] = "  Ada Lovelace "
    reordered = json.loads(json.dumps(dict(reversed(body.items()))))

    assert body_hmac(parse_checkout(reordered, TODAY), SECRET) == body_hmac(request_for(), SECRET)


@pytest.mark.parametrize(
    "change",
    [
        {"card_number": "4000000000000002"},
        {"cvc": "124"},
        {"exp_month": 11},
        {"exp_year": 2032},
    ],
)
def test_any_change_to_the_card_changes_the_hmac(change: dict[str, Any]) -> None:
    assert body_hmac(request_for(**change), SECRET) != body_hmac(request_for(), SECRET)


def test_any_change_to_the_order_changes_the_hmac() -> None:
    two_pairs = order_body(quantity=2)

    assert body_hmac(parse_checkout(two_pairs, TODAY), SECRET) != body_hmac(request_for(), SECRET)


def test_it_is_keyed_by_the_secret_and_is_no_plain_hash() -> None:
    request = request_for()
    canonical = json.dumps(asdict(request), sort_keys=True, separators=(",", ":")).encode()

    mac = body_hmac(request, SECRET)

    assert mac != body_hmac(request, "another-secret")
    assert mac != hashlib.sha256(canonical).hexdigest()
    assert GOOD_CARD not in mac


def test_it_fits_the_checkouts_body_hmac_column() -> None:
    from shop.tables import checkouts

    mac = body_hmac(request_for(), SECRET)

    assert len(mac) == checkouts.c.body_hmac.type.length == 64
    assert int(mac, 16) >= 0


def test_a_stored_hmac_matches_only_its_own_body() -> None:
    mac = body_hmac(request_for(), SECRET)

    assert same_body(mac, mac)
    assert not same_body(mac, body_hmac(request_for(cvc="124"), SECRET))


def test_a_checkout_stored_before_hmacs_were_kept_matches_any_body() -> None:
    assert same_body(None, body_hmac(request_for(), SECRET))
