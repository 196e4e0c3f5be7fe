"""Placing orders over HTTP with real concurrency, all at once or at a steady rate."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from workers.bench.measure import rate as per_second
from workers.bench.measure import summary_ms

GOOD_CARD = "4242424242424242"
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Placement:
    """One POST: when it was sent, how long it took, and what came back."""

    index: int
    sent_at: float
    seconds: float
    status: int
    order_id: str | None


def order_bodies(products: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Endless checkout bodies, one pair each, spread over every sku and size in stock."""
    choices = [
        (product["sku"], size["size"])
        for product in products
        for size in product.get("sizes", [])
        if int(size.get("available", 0)) > 0
    ]
    if not choices:
        raise RuntimeError("the catalogue has nothing in stock to order")
    for sku, size in itertools.cycle(choices):
        yield {
            "customer": {"name": "Bench Mark", "email": "bench@example.com"},
            "shipping_address": {
                "line1": "Keizersgracht 1",
                "city": "Amsterdam",
                "postal_code": "1015 CJ",
                "country": "NL",
            },
            "items": [{"sku": sku, "size": size, "quantity": 1}],
            "payment": {"card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }


def fetch_products(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/api/products", timeout=REQUEST_TIMEOUT_S)
    response.raise_for_status()
    products: list[dict[str, Any]] = response.json()
    return products


class _Clients(threading.local):
    client: httpx.Client | None = None


def place_many(
    url: str,
    bodies: Iterator[dict[str, Any]],
    count: int,
    *,
    concurrency: int,
    rate: float | None = None,
    on_done: Callable[[Placement], None] | None = None,
) -> list[Placement]:
    """POST ``count`` bodies to ``url`` from ``concurrency`` threads.

    With ``rate`` the sends are scheduled open-loop at ``rate`` per second (a slow answer does not
    slow the schedule down unless every thread is busy); without it they go as fast as they can.
    """
    payloads = [next(bodies) for _ in range(count)]
    clients = _Clients()
    opened: list[httpx.Client] = []
    lock = threading.Lock()
    start = time.monotonic()
    wall_offset = time.time() - start

    def send(index: int) -> Placement:
        if clients.client is None:
            clients.client = httpx.Client(timeout=REQUEST_TIMEOUT_S)
            with lock:
                opened.append(clients.client)
        if rate:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent = time.monotonic()
        try:
            response = clients.client.post(url, json=payloads[index])
            status = response.status_code
            order_id = response.json().get("id") if status == 202 else None
        except httpx.HTTPError:
            status, order_id = 0, None
        placement = Placement(index, sent + wall_offset, time.monotonic() - sent, status, order_id)
        if on_done is not None:
            with lock:
                on_done(placement)
        return placement

    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-load") as pool:
            return list(pool.map(send, range(count)))
    finally:
        for client in opened:
            client.close()


def intake(placements: list[Placement]) -> dict[str, Any]:
    """Accepted requests per second over the whole send window, and the request latencies."""
    accepted = [p for p in placements if p.status == 202]
    if not accepted:
        return {"rps": 0.0, "accepted": 0, "failed": len(placements), "latency_ms": summary_ms([])}
    first = min(p.sent_at for p in placements)
    last = max(p.sent_at + p.seconds for p in placements)
    return {
        "rps": round(per_second(len(accepted), first, last), 2),
        "accepted": len(accepted),
        "failed": len(placements) - len(accepted),
        "latency_ms": summary_ms([p.seconds for p in accepted]),
    }
