"""The faults bench's counting: lost orders, double charges, charges against paid orders and
stock drift read as tests/support/invariants.py reads them; the table and the JSON's shape; and
the naive shop's duplicate-delivery hook, off by default and refused in production."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import ConfigurationError, get_settings
from workers.bench import naive_app
from workers.bench.faults_count import (
    OrderRow,
    StockRow,
    charges_unmatched,
    count,
    report,
    stock_drift,
    table,
)

LINE = (("TRL-001", "42", 1),)
KEY = ("TRL-001", "42")
WHOLE = {KEY: StockRow(available=398, reserved=0, sold=2)}


def _charge(order_id: str, status: str = "succeeded", amount: int = 100) -> dict[str, Any]:
    return {"order_id": order_id, "status": status, "amount_cents": amount}


def _count(
    accepted: list[str],
    orders: list[OrderRow],
    charges: list[dict[str, Any]],
    stock: dict[tuple[str, str], StockRow] | None = None,
    failed: int = 0,
) -> dict[str, Any]:
    return dict(count("s", accepted, failed, orders, charges, stock or WHOLE, {KEY: 400}))


def test_an_order_neither_shipped_nor_cancelled_is_lost() -> None:
    orders = [OrderRow("a", "SHIPPED", LINE), OrderRow("b", "PAID", LINE)]
    row = _count(["a", "b"], orders, [_charge("a"), _charge("b")])
    assert (row["orders"], row["shipped"], row["cancelled"], row["lost"]) == (2, 1, 0, 1)


def test_an_accepted_order_missing_from_the_database_is_lost() -> None:
    row = _count(["a", "gone"], [OrderRow("a", "CANCELLED", LINE)], [])
    assert (row["cancelled"], row["lost"]) == (1, 1)


def test_two_succeeded_charges_for_one_order_are_a_double_charge() -> None:
    orders = [OrderRow("a", "SHIPPED", LINE)]
    row = _count(["a"], orders, [_charge("a"), _charge("a"), _charge("a", "declined")])
    assert row["charged_twice"] == 1


def test_a_refunded_second_charge_still_counts_as_charged_twice() -> None:
    orders = [OrderRow("a", "SHIPPED", LINE)]
    assert _count(["a"], orders, [_charge("a"), _charge("a", "refunded")])["charged_twice"] == 1


def test_a_paid_order_without_a_charge_and_a_charged_unpaid_order_do_not_match() -> None:
    orders = [
        OrderRow("paid", "PAID", LINE),
        OrderRow("pending", "PAYMENT_PENDING", LINE),
        OrderRow("fine", "SHIPPED", LINE),
    ]
    assert charges_unmatched(orders, [_charge("pending"), _charge("fine")]) == 2


def test_a_charge_for_an_order_the_database_does_not_hold_does_not_match() -> None:
    assert charges_unmatched([OrderRow("a", "CANCELLED", LINE)], [_charge("stranger")]) == 1


def test_conserved_stock_has_no_drift_even_with_pairs_still_reserved() -> None:
    stock = {KEY: StockRow(available=397, reserved=1, sold=2)}
    assert stock_drift(stock, {KEY: 400}) == 0


def test_pairs_sold_twice_or_put_back_twice_are_drift() -> None:
    other = ("RUN-002", "40")
    stock = {KEY: StockRow(397, 0, 4), other: StockRow(401, 0, 0)}
    assert stock_drift(stock, {KEY: 400, other: 400}) == 2


def test_a_stock_row_that_vanished_drifts_by_its_whole_initial_stock() -> None:
    assert stock_drift({}, {KEY: 400}) == 400


def test_orders_the_customer_was_not_told_of_are_orphaned() -> None:
    orders = [OrderRow("a", "SHIPPED", LINE), OrderRow("b", "PLACED", LINE)]
    row = _count(["a"], orders, [_charge("a")], failed=1)
    assert (row["orders"], row["failed"], row["orphaned"], row["lost"]) == (1, 1, 1, 0)


def test_the_table_has_a_header_a_rule_and_a_line_per_scenario() -> None:
    rows = [count(n, [], 0, [], [], {}, {}) for n in ("worker-killed", "duplicate-delivery")]
    lines = table(rows).splitlines()
    assert lines[0].startswith("| scenario | orders (202) | shipped |")
    assert lines[1].count("|") == lines[0].count("|")
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| worker-killed",
        "| duplicate-delivery",
    ]


def test_the_report_lists_each_scenario_with_its_counts() -> None:
    row = count("worker-killed", ["a"], 0, [OrderRow("a", "SHIPPED", LINE)], [], WHOLE, {KEY: 400})
    out = report([row], broker="embedded redis", started="20261130T000000Z", machine={})
    scenario = out["scenarios"][0]
    required = {"name", "orders", "shipped", "cancelled", "lost", "charged_twice", "stock_drift"}
    assert required <= set(scenario)
    assert scenario["name"] == "worker-killed"


@pytest.fixture()
def hook_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The hook and the settings read afresh from an environment the test sets."""
    monkeypatch.delenv(naive_app.DUPLICATE_ENV, raising=False)
    naive_app.duplicate_sends.cache_clear()
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    naive_app.duplicate_sends.cache_clear()
    get_settings.cache_clear()


def test_the_duplicate_delivery_hook_is_off_by_default(hook_env: pytest.MonkeyPatch) -> None:
    assert naive_app.duplicate_sends() is False


def test_the_duplicate_delivery_hook_is_on_when_set(hook_env: pytest.MonkeyPatch) -> None:
    hook_env.setenv(naive_app.DUPLICATE_ENV, "1")
    assert naive_app.duplicate_sends() is True


def test_the_duplicate_delivery_hook_is_refused_in_production(
    hook_env: pytest.MonkeyPatch,
) -> None:
    hook_env.setenv(naive_app.DUPLICATE_ENV, "1")
    hook_env.setenv("SHOESHOP_ENV", "production")
    hook_env.setenv("SHOESHOP_SECRET_KEY", "a-real-secret-key-of-forty-characters-xx")
    hook_env.setenv("SHOESHOP_ADMIN_PASSWORD", "a-real-admin-password")
    with pytest.raises(ConfigurationError, match=naive_app.DUPLICATE_ENV):
        naive_app.duplicate_sends()


def test_the_duplicate_delivery_hook_names_a_bad_value(hook_env: pytest.MonkeyPatch) -> None:
    hook_env.setenv(naive_app.DUPLICATE_ENV, "yes")
    with pytest.raises(ConfigurationError, match="must be unset, 0"):
        naive_app.duplicate_sends()
