"""What an id in a URL may be: a route matches only ids the shop could have written, so anything
else (a NUL that PostgreSQL refuses even in a lookup, a control character) is a 404 before any
database is asked."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import BaseConverter

from workers.messaging.envelope import UUID_PATTERN, unanchored


class UuidConverter(BaseConverter):
    """A UUID as the shop writes them (lower-case hex, hyphenated): ``UUID_PATTERN``, the
    envelope's own, unanchored (Werkzeug anchors a converter's regex in its route)."""

    regex = unanchored(UUID_PATTERN)


class OrderIdConverter(UuidConverter):
    """``<order_id:…>``: an order's id."""


class DeadLetterIdConverter(UuidConverter):
    """``<dead_letter_id:…>``: a dead letter's id (workers.messaging.deadletters writes uuid4s)."""


class SkuConverter(BaseConverter):
    """``<sku:…>``: a catalogue code such as ``RUN-001``, at most products.sku's 32 characters."""

    regex = r"[A-Za-z0-9-]{1,32}"


def init_app(app: Flask) -> None:
    """Register the converters; call before any blueprint whose routes use them."""
    app.url_map.converters["order_id"] = OrderIdConverter
    app.url_map.converters["dead_letter_id"] = DeadLetterIdConverter
    app.url_map.converters["sku"] = SkuConverter
