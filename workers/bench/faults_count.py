"""What a fault left in the naive shop, counted the way the failure matrix counts the system.

Pure functions over what the faults bench reads once the naive shop is quiet: its orders, its
stock rows, the gateway's ledger. The rules are tests/support/invariants.py's: an order neither
SHIPPED nor CANCELLED is lost; more than one succeeded (or refunded) charge per order is a
double charge; for every shoe and size, available + reserved + sold must equal the stock it
started with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, cast

FINAL = ("SHIPPED", "CANCELLED")
PAID = ("PAID", "SHIPPED")
# A charge that took money, as invariants.CHARGED: a refund does not undo the double charge.
CHARGED = ("succeeded", "refunded")
StockKey = tuple[str, str]


@dataclass(frozen=True)
class OrderRow:
    """One order of the naive database: its status and its lines (sku, size, quantity)."""

    id: str
    status: str
    lines: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class StockRow:
    available: int
    reserved: int
    sold: int


class ScenarioCount(TypedDict):
    """One scenario's row of the report.

    ``orders``: checkouts answered 202; ``shipped``, ``cancelled``, ``lost`` (neither, once
    quiet) split them. ``charged_twice``: orders with more than one charge in the gateway's
    ledger. ``charges_unmatched``: orders whose succeeded charges are not one if PAID or SHIPPED,
    none otherwise. ``stock_drift``: pairs gained or lost, summed over every sku and size.
    ``orphaned``: orders in the database whose checkout did not answer 202 (the customer was
    told it failed; the order and its reserved pairs stay). ``failed``: checkouts not answered
    202.
    """

    name: str
    orders: int
    shipped: int
    cancelled: int
    lost: int
    charged_twice: int
    charges_unmatched: int
    stock_drift: int
    orphaned: int
    failed: int
    notes: list[str]


def count(
    name: str,
    accepted: Sequence[str],
    failed: int,
    orders: Iterable[OrderRow],
    charges: Iterable[Mapping[str, Any]],
    stock: Mapping[StockKey, StockRow],
    initial: Mapping[StockKey, int],
    notes: Sequence[str] = (),
) -> ScenarioCount:
    """The scenario's row: ``accepted`` are the ids answered 202, ``failed`` the checkouts that
    were not; ``orders`` every order in the database, ``charges`` the gateway's ledger,
    ``stock`` the stock rows now and ``initial`` each row's stock before the first order."""
    by_id = {order.id: order for order in orders}
    statuses = Counter(by_id[oid].status if oid in by_id else "MISSING" for oid in accepted)
    shipped, cancelled = statuses["SHIPPED"], statuses["CANCELLED"]
    per_order = Counter(c["order_id"] for c in charges if c["status"] in CHARGED)
    return ScenarioCount(
        name=name,
        orders=len(accepted),
        shipped=shipped,
        cancelled=cancelled,
        lost=len(accepted) - shipped - cancelled,
        charged_twice=sum(n > 1 for n in per_order.values()),
        charges_unmatched=charges_unmatched(by_id.values(), charges),
        stock_drift=stock_drift(stock, initial),
        orphaned=len(set(by_id) - set(accepted)),
        failed=failed,
        notes=list(notes),
    )


def charges_unmatched(orders: Iterable[OrderRow], charges: Iterable[Mapping[str, Any]]) -> int:
    """Orders whose succeeded charges are not exactly one when PAID or SHIPPED and none
    otherwise, with charges for orders the database does not hold each counted once."""
    succeeded = Counter(c["order_id"] for c in charges if c["status"] == "succeeded")
    known = {order.id for order in orders}
    wrong = sum(succeeded[o.id] != (1 if o.status in PAID else 0) for o in orders)
    return wrong + len(set(succeeded) - known)


def stock_drift(stock: Mapping[StockKey, StockRow], initial: Mapping[StockKey, int]) -> int:
    """Pairs that appeared or vanished: |available + reserved + sold - initial|, summed over
    every sku and size of either mapping (a row missing now counts as zero pairs)."""
    total = 0
    for key in set(stock) | set(initial):
        row = stock.get(key, StockRow(0, 0, 0))
        total += abs(row.available + row.reserved + row.sold - initial.get(key, 0))
    return total


COLUMNS: tuple[tuple[str, str], ...] = (
    ("scenario", "name"),
    ("orders (202)", "orders"),
    ("shipped", "shipped"),
    ("cancelled", "cancelled"),
    ("lost", "lost"),
    ("charged twice", "charged_twice"),
    ("charges ≠ paid", "charges_unmatched"),
    ("stock drift (pairs)", "stock_drift"),
    ("checkouts failed", "failed"),
    ("orphaned orders", "orphaned"),
)


def table(rows: Sequence[ScenarioCount]) -> str:
    """The rows as a markdown table, a column per count."""
    head = "| " + " | ".join(title for title, _ in COLUMNS) + " |"
    rule = "|---|" + "---:|" * (len(COLUMNS) - 1)
    cells = [cast(Mapping[str, object], row) for row in rows]
    body = ["| " + " | ".join(str(row[key]) for _, key in COLUMNS) + " |" for row in cells]
    return "\n".join([head, rule, *body])


def report(
    rows: Sequence[ScenarioCount], *, broker: str, started: str, machine: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON written to var/bench/faults-<stamp>.json."""
    return {
        "kind": "faults",
        "peer": "naive",
        "started": started,
        "broker": broker,
        "machine": dict(machine),
        "scenarios": [dict(row) for row in rows],
    }
