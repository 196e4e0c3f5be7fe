"""What must hold once a shop under fault is quiet: nothing lost, charged once, stock whole."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from shop.seed import PAIRS_PER_SIZE

FINAL = ("SHIPPED", "CANCELLED")
CHARGED = ("succeeded", "refunded")
# How a lost order is reported: neither final nor parked once the shop went quiet.
LATE = "neither final nor parked"


@dataclass(frozen=True)
class ShopUnderTest:
    """Where a running shop answers, and the environment its own CLI needs."""

    url: str
    gateway_url: str
    env: dict[str, str]

    def order(self, client: httpx.Client, order_id: str) -> dict[str, Any]:
        response = client.get(f"{self.url}/api/orders/{order_id}", timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def charges(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.gateway_url}/v1/charges", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        """Parked letters, through the operators' own command (`shoeshop dlq list --json`)."""
        result = self.cli("dlq", "list", "--json")
        letters: list[dict[str, Any]] = json.loads(result.stdout)
        return letters

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        shoeshop = str(Path(sys.executable).parent / "shoeshop")
        result = subprocess.run(
            [shoeshop, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise AssertionError(f"shoeshop {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def stock(self) -> dict[tuple[str, str], dict[str, int]]:
        """The shop's stock rows, read straight from its database (the test is the auditor)."""
        with component_engine(self.env, "shop").connect() as conn:
            rows = conn.execute(text("SELECT sku, size, available, reserved, sold FROM stock"))
            return {
                (row.sku, row.size): {
                    "available": row.available,
                    "reserved": row.reserved,
                    "sold": row.sold,
                }
                for row in rows
            }

    def shipments(self) -> Counter[str]:
        """How many shipments the shipping component holds per order."""
        with component_engine(self.env, "shipping").connect() as conn:
            if not inspect(conn).has_table("shipments"):
                return Counter()  # created on the shipping worker's first message
            rows = conn.execute(text("SELECT order_id FROM shipments"))
            return Counter(str(row.order_id) for row in rows)

    def set_available(self, sku: str, size: str, available: int) -> None:
        with component_engine(self.env, "shop").begin() as conn:
            conn.execute(
                text("UPDATE stock SET available = :n WHERE sku = :sku AND size = :size"),
                {"n": available, "sku": sku, "size": size},
            )


def component_engine(env: dict[str, str], component: str) -> Engine:
    """A component's own database, as its processes see it (SQLite file or PostgreSQL schema)."""
    url = env.get("SHOESHOP_DATABASE_URL")
    if url:
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        options = {"options": f"-c search_path={component}"}
        return create_engine(url, poolclass=NullPool, connect_args=options)
    path = Path(env["SHOESHOP_DATA_DIR"]) / f"{component}.db"
    return create_engine(f"sqlite:///{path}", poolclass=NullPool)


@dataclass
class Outcome:
    """The counts of one scenario's run, and every broken invariant in plain words."""

    placed: int = 0
    shipped: int = 0
    cancelled: int = 0
    parked: int = 0
    lost: int = 0
    charged_twice: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "placed": self.placed,
            "shipped": self.shipped,
            "cancelled": self.cancelled,
            "parked": self.parked,
            "lost": self.lost,
            "charged_twice": self.charged_twice,
        }


def settled(view: dict[str, Any]) -> bool:
    return view["status"] in FINAL or bool(view.get("delayed"))


def views(shop: ShopUnderTest, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    with httpx.Client() as client:
        return {oid: shop.order(client, oid) for oid in order_ids}


def wait_until_settled(
    shop: ShopUnderTest,
    order_ids: list[str],
    timeout_s: float,
    quiet_s: float = 2.0,
    give_up: Callable[[], bool] = lambda: False,
) -> dict[str, dict[str, Any]]:
    """Poll until every order is final or parked and nothing has moved for ``quiet_s``.

    ``give_up`` ends the wait early when waiting longer cannot help (a process died).
    """
    deadline = time.monotonic() + timeout_s
    last: dict[str, dict[str, Any]] = {}
    stable_since = time.monotonic()
    while time.monotonic() < deadline and not give_up():
        now = views(shop, order_ids)
        if _digest(now) != _digest(last):
            stable_since = time.monotonic()
        last = now
        if all(settled(v) for v in now.values()) and time.monotonic() - stable_since >= quiet_s:
            return now
        time.sleep(0.5)
    return last


def _digest(found: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return sorted((oid, v["status"], bool(v.get("delayed"))) for oid, v in found.items())


def observe(
    shop: ShopUnderTest,
    found: dict[str, dict[str, Any]],
    *,
    initial: dict[tuple[str, str], int] | None = None,
) -> Outcome:
    """Count the outcome and check every invariant; ``initial`` overrides stock per sku/size."""
    outcome = Outcome(placed=len(found))
    parked_subjects = {letter.get("subject") for letter in shop.dead_letters()}
    for oid, view in found.items():
        if view["status"] == "SHIPPED":
            outcome.shipped += 1
        elif view["status"] == "CANCELLED":
            outcome.cancelled += 1
        elif view.get("delayed") or oid in parked_subjects:
            outcome.parked += 1
            if not view.get("delayed"):
                outcome.problems.append(f"order {oid} has a parked letter but no 'delayed' field")
        else:
            outcome.lost += 1
            outcome.problems.append(f"order {oid} is {view['status']}, {LATE}")
    _check_charges(shop.charges(), found, outcome)
    _check_stock(shop.stock(), found, initial or {}, outcome)
    _check_shipments(shop.shipments(), found, outcome)
    return outcome


def _check_shipments(
    shipments: Counter[str], found: dict[str, dict[str, Any]], outcome: Outcome
) -> None:
    for oid, view in found.items():
        expected = 1 if view["status"] == "SHIPPED" else 0
        if view["status"] == "SHIPPED" and shipments[oid] != expected:
            outcome.problems.append(f"order {oid} shipped with {shipments[oid]} shipments")


def _check_charges(
    charges: list[dict[str, Any]], found: dict[str, dict[str, Any]], outcome: Outcome
) -> None:
    per_order = Counter(c["order_id"] for c in charges if c["status"] in CHARGED)
    twice = {oid: n for oid, n in per_order.items() if n > 1}
    outcome.charged_twice = len(twice)
    for oid, n in twice.items():
        outcome.problems.append(f"order {oid} was charged {n} times")
    strangers = set(per_order) - set(found)
    if strangers:
        outcome.problems.append(f"charges for orders nobody placed: {sorted(strangers)}")
    # An order still in flight (already counted as lost) may be charged before the shop hears
    # of it; the sums compare the orders that came to rest.
    in_flight = {oid for oid, view in found.items() if not settled(view)}
    paid = {
        oid
        for oid, view in found.items()
        if view["status"] in ("PAID", "SHIPPED") and oid not in in_flight
    }
    expected = sum(found[oid]["total_cents"] for oid in paid)
    charged = sum(
        c["amount_cents"]
        for c in charges
        if c["status"] == "succeeded" and c["order_id"] not in in_flight
    )
    if expected != charged:
        outcome.problems.append(
            f"charges ({charged} cents) differ from the paid orders' totals ({expected} cents)"
        )
    for oid, view in found.items():
        if view["status"] == "SHIPPED" and per_order[oid] != 1:
            outcome.problems.append(f"order {oid} shipped with {per_order[oid]} charges")


def _check_stock(
    rows: dict[tuple[str, str], dict[str, int]],
    found: dict[str, dict[str, Any]],
    initial: dict[tuple[str, str], int],
    outcome: Outcome,
) -> None:
    sold: Counter[tuple[str, str]] = Counter()
    held: Counter[tuple[str, str]] = Counter()
    for view in found.values():
        for item in view["items"]:
            key = (item["sku"], item["size"])
            if view["status"] == "SHIPPED":
                sold[key] += item["quantity"]
            elif view["status"] != "CANCELLED":
                held[key] += item["quantity"]
    for key, row in rows.items():
        start = initial.get(key, PAIRS_PER_SIZE)
        if min(row.values()) < 0:
            outcome.problems.append(f"stock {key} went negative: {row}")
        if row["available"] + row["reserved"] + row["sold"] != start:
            outcome.problems.append(f"stock {key} not conserved: {row}, initially {start}")
        if row["sold"] != sold[key] or row["reserved"] != held[key]:
            outcome.problems.append(
                f"stock {key}: sold {row['sold']} / reserved {row['reserved']}, but the orders "
                f"say sold {sold[key]} / reserved {held[key]}"
            )
