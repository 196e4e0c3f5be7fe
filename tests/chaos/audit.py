"""Every write to the order statuses the shop and orders keep, recorded by the databases.

Triggers on the shop's order view (shop ``orders``) and on orders' projection of its event log
(``order_list``) write the status each write found and the one it left into an audit table
beside them, in the writer's own transaction, whoever the writer is. The test reads the audit
afterwards: a write that moved a status backwards cannot hide, however briefly it lasted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, text

from tests.support.invariants import component_engine

# component -> (table, the column naming the order). The shop's order view is what customers
# see; order_list is orders' status projection (its other one, sales, holds no status).
AUDITED = {"shop": ("orders", "id"), "orders": ("order_list", "order_id")}
AUDIT = "chaos_status_writes"
# The lifecycle (docs/architecture.md): PLACED → PAYMENT_PENDING → PAID → SHIPPED, CANCELLED
# from any of the first three; SHIPPED and CANCELLED are final.
RANK = {"PLACED": 0, "PAYMENT_PENDING": 1, "PAID": 2, "SHIPPED": 3, "CANCELLED": 3}
FINAL = ("SHIPPED", "CANCELLED")


@dataclass(frozen=True)
class Write:
    """One row written: its table, INSERT / UPDATE / DELETE, and the status before and after."""

    component: str
    table: str
    op: str
    order_id: str
    old: str | None
    new: str | None

    @property
    def backwards(self) -> bool:
        """Out of a final status, to an earlier one, or a row gone (an order the view forgot)."""
        if self.old is None:  # a new row
            return False
        if self.new is None:
            return True
        if self.old in FINAL:
            return self.new != self.old
        return RANK[self.new] < RANK[self.old]

    def __str__(self) -> str:
        return f"{self.component}.{self.table} {self.op} {self.order_id}: {self.old} → {self.new}"


def install(env: dict[str, str]) -> None:
    """Create the audit table and the triggers in the shop's and orders' databases."""
    for component, (table, key) in AUDITED.items():
        with component_engine(env, component).begin() as conn:
            if conn.dialect.name == "postgresql":
                _install_postgresql(conn, component, table, key)
            else:
                _install_sqlite(conn, table, key)


def _install_sqlite(conn: Connection, table: str, key: str) -> None:
    conn.exec_driver_sql(
        f"CREATE TABLE {AUDIT} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, "
        "op TEXT NOT NULL, order_id TEXT NOT NULL, old_status TEXT, new_status TEXT)"
    )
    for op, row, old, new in (
        ("INSERT", "NEW", "NULL", "NEW.status"),
        ("UPDATE", "NEW", "OLD.status", "NEW.status"),
        ("DELETE", "OLD", "OLD.status", "NULL"),
    ):
        conn.exec_driver_sql(
            f"CREATE TRIGGER {AUDIT}_{op.lower()} AFTER {op} ON {table} FOR EACH ROW BEGIN "
            f"INSERT INTO {AUDIT} (tbl, op, order_id, old_status, new_status) "
            f"VALUES ('{table}', '{op}', {row}.{key}, {old}, {new}); END"
        )


def _install_postgresql(conn: Connection, schema: str, table: str, key: str) -> None:
    conn.exec_driver_sql(
        f"CREATE TABLE {schema}.{AUDIT} (seq BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, "
        "op TEXT NOT NULL, order_id TEXT NOT NULL, old_status TEXT, new_status TEXT)"
    )
    # One function for any table: the row as JSON, its key column named by the trigger.
    conn.exec_driver_sql(
        f"""CREATE FUNCTION {schema}.{AUDIT}_record() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            before jsonb;
            after jsonb;
        BEGIN
            IF TG_OP <> 'INSERT' THEN before := to_jsonb(OLD); END IF;
            IF TG_OP <> 'DELETE' THEN after := to_jsonb(NEW); END IF;
            INSERT INTO {schema}.{AUDIT} (tbl, op, order_id, old_status, new_status)
            VALUES (TG_TABLE_NAME, TG_OP, coalesce(after, before) ->> TG_ARGV[0],
                    before ->> 'status', after ->> 'status');
            RETURN NULL;
        END $$"""
    )
    conn.exec_driver_sql(
        f"CREATE TRIGGER {AUDIT} AFTER INSERT OR UPDATE OR DELETE ON {schema}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.{AUDIT}_record('{key}')"
    )


def writes(env: dict[str, str]) -> list[Write]:
    """Every write the triggers recorded, each database's in the order they were made."""
    found = []
    for component in AUDITED:
        with component_engine(env, component).connect() as conn:
            rows = conn.execute(
                text(f"SELECT tbl, op, order_id, old_status, new_status FROM {AUDIT} ORDER BY seq")
            )
            found += [Write(component, *row) for row in rows]
    return found


def status_counts(env: dict[str, str]) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(status, reason) of the orders in the shop's view, counted from its rows and as its
    ``order_counts`` (what /metrics reads, kept in the view's transactions) has them."""
    with component_engine(env, "shop").connect() as conn:
        rows = conn.execute(text("SELECT status, reason FROM orders"))
        view = Counter((row.status, row.reason or "") for row in rows)
        rows = conn.execute(text("SELECT status, reason, orders FROM order_counts"))
        kept = Counter({(row.status, row.reason): row.orders for row in rows if row.orders})
    return view, kept


def ends(env: dict[str, str], component: str) -> dict[str, tuple[str, str | None]]:
    """Each order's (status, reason) in the component's audited table."""
    table, key = AUDITED[component]
    with component_engine(env, component).connect() as conn:
        rows = conn.execute(text(f"SELECT {key} AS id, status, reason FROM {table}"))
        return {row.id: (row.status, row.reason) for row in rows}


def heard_out_of_order(env: dict[str, str]) -> list[str]:
    """The orders whose status changes the shop heard in another order than the lifecycle's:
    proof that the reordering reached the view (its log keeps every event it applied, a late
    one too, in the order it applied them)."""
    with component_engine(env, "shop").connect() as conn:
        rows = conn.execute(
            text(
                "SELECT order_id, event FROM heard_events "
                "WHERE type LIKE '%order.status_changed%' ORDER BY seq"
            )
        )
        heard: dict[str, list[int]] = {}
        for row in rows:
            event = json.loads(row.event) if isinstance(row.event, str) else row.event
            heard.setdefault(row.order_id, []).append(RANK[event["data"]["status"]])
    return [oid for oid, ranks in heard.items() if ranks != sorted(ranks)]
