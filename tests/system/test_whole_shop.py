"""The real processes, driven over HTTP: orders ship, Flower sees the workers, Ctrl-C stops all."""

from __future__ import annotations

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
