"""The real processes, driven over HTTP: orders ship, Flower sees the workers, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.shop import order_body, wait_for
from tests.support.stack import Stack
from tests.system.conftest import (
    DATABASE_PASSWORD,
    FLOWER_PASSWORD,
    FLOWER_USER,
    READ_TIMEOUT_S,
    RunningShop,
    command_line,
    descendants,
    still_alive,
)

ORDERS = 20
SKUS = ("TRL-001", "RUN-001", "CAS-002", "BOT-002", "CRT-001")


def place(shop: RunningShop, index: int) -> str:
    body = order_body(sku=SKUS[index % len(SKUS)], size=str(38 + index % 8), quantity=1 + index % 3)
    response = httpx.post(f"{shop.url}/api/orders", json=body, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def statuses(shop: RunningShop, order_ids: list[str]) -> dict[str, Any]:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        return {oid: client.get(f"/api/orders/{oid}").json()["status"] for oid in order_ids}


def test_twenty_orders_placed_over_http_all_ship(running_shop: RunningShop) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        order_ids = list(pool.map(lambda i: place(running_shop, i), range(ORDERS)))

    def all_shipped() -> dict[str, Any] | None:
        now = statuses(running_shop, order_ids)
        return now if set(now.values()) == {"SHIPPED"} else None

    wait_for(all_shipped, timeout_s=90, every_s=0.5)
    charges = httpx.get(f"{running_shop.gateway_url}/v1/charges").json()
    assert sorted(c["order_id"] for c in charges) == sorted(order_ids)


def test_flower_sees_a_worker_per_component_behind_basic_auth(running_shop: RunningShop) -> None:
    assert httpx.get(f"{running_shop.flower_url}/api/workers", timeout=10).status_code == 401

    def workers() -> set[str] | None:
        response = httpx.get(
            f"{running_shop.flower_url}/api/workers",
            params={"refresh": "1"},
            auth=(FLOWER_USER, FLOWER_PASSWORD),
            timeout=20,
        )
        names = (
            {name.split("@")[0] for name in response.json()}
            if response.status_code == 200
            else set()
        )
        return (
            names if names >= {"shop", "orders", "payments", "shipping", "notifications"} else None
        )

    wait_for(workers, timeout_s=60, every_s=1)


SLOW_CLIENTS = 200
DRIPPERS = 20


def closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (an answer it sent first is read past)."""
    sock.setblocking(False)
    try:
        while True:
            if sock.recv(4096) == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_clients_neither_stall_the_shop_nor_stay(
    running_shop: RunningShop, stack: Stack
) -> None:
    # Issue #17. The server model is the same on every broker: once is enough.
    if stack.name != "embedded":
        pytest.skip("the web's server model does not depend on the broker")
    address = urlsplit(running_shop.url)
    place = (address.hostname or "127.0.0.1", address.port or 80)
    # Clients that never finish their headers, and clients that send a body a byte at a time.
    stallers = [socket.create_connection(place) for _ in range(SLOW_CLIENTS)]
    for sock in stallers:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n")
    drippers = [socket.create_connection(place) for _ in range(DRIPPERS)]
    for sock in drippers:
        sock.sendall(
            b"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            b"Content-Length: 400\r\n\r\n{"
        )
    try:
        # Meanwhile the shop answers everyone else.
        with httpx.Client(base_url=running_shop.url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/products/RUN-001").status_code == 200
            assert client.post("/api/orders", json=order_body()).status_code == 202
        # The headers' deadline (gunicorn's keep-alive, 2 s) drops the first kind ...
        wait_for(lambda: all(closed(sock) for sock in stallers), timeout_s=15, every_s=0.5)
        # ... the body's (SHOESHOP_READ_TIMEOUT) answers the second with 408, drip or not.
        started = time.monotonic()
        answers = [b""] * DRIPPERS
        while time.monotonic() - started < READ_TIMEOUT_S + 10 and not all(answers):
            for index, sock in enumerate(drippers):
                if answers[index]:
                    continue
                sock.setblocking(False)
                try:
                    answers[index] = sock.recv(4096)
                except BlockingIOError:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")
            time.sleep(1)
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers[:3]
        assert b'"code":"request_timeout"' in answers[0].replace(b" ", b"")
    finally:
        for sock in stallers + drippers:
            sock.close()


def test_ctrl_c_stops_every_process(running_shop: RunningShop) -> None:
    tree = descendants(running_shop.process.pid)
    commands = " ".join(command_line(pid) for pid in tree)
    for queue in ("shop", "orders", "payments", "shipping", "notifications"):
        assert f"worker -Q {queue}" in commands
    for process in (
        "gunicorn",
        "shoeshop relay",
        "shoeshop gateway",
        "shoeshop mailcatcher",
        "flower",
        "beat",
    ):
        assert process in commands

    running_shop.stop()

    deadline = time.monotonic() + 15
    while still_alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert still_alive(tree) == set()


def test_no_log_line_shows_a_password(running_shop: RunningShop, stack: Stack) -> None:
    # Last in this module: every process has run, logged and stopped (issue #17).
    if stack.name != "services":
        pytest.skip("the embedded Redis and SQLite files have no password to show")
    log = running_shop.log.read_text(errors="replace")
    broker = urlsplit(stack.env["SHOESHOP_BROKER_URL"])
    assert broker.password and f":{broker.password}@" not in log
    assert DATABASE_PASSWORD not in log
    assert f"{broker.username}:***@" in log  # the banner names the broker, masked
