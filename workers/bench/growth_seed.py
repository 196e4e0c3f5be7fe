"""Seeding years of history fast: the rows real orders wrote, cloned (``shoeshop bench growth``).

Placing a million orders over HTTP would take the bench half a day, so the growth bench writes
history directly, and writes exactly what the real flow writes: it places a few *template* orders
through the whole running shop (checkout, the saga, every worker), waits until every component
has finished with them, and records every row they left in every component's database, as the
database stores it (SQLite's text, PostgreSQL's COPY text). A clone is such a row with every id
(UUIDs: order, events, causations, payments, shipments, idempotency keys) replaced by a fresh
one, consistently across the clone's rows, as is every gateway token (runs of hex) and every
value derived from an id (the tracking number, from the shipment's id), every timestamp moved
back by the clone's age, and the customer's email made its own. Nothing is built from the
code's idea of the rows, so a new column or table is cloned without a change here; a row this
module cannot place (one that names no template order and is no known aggregate) stops the
bench instead of being left out.

History is laid out as a shop that takes ``per_day`` orders a day would have it: clone g (0 the
newest) was placed g / per_day days ago. Transport rows (outbox, inbox) are written only for
clones younger than their retention (SHOESHOP_OUTBOX_RETENTION, SHOESHOP_INBOX_RETENTION), as the
relay's pruning would have left them; every kept row is written for every clone.

Aggregates (rows about no single order) are advanced by the templates' own effect, once per
generation of clones (one clone of each template): ``order_counts`` (shop), ``sales`` (orders),
and ``stock.sold`` (shop; ``available`` is left as it is, as if each generation's pairs had been
restocked, so the bench's own checkouts always find stock).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table

from config.settings import COMPONENTS
from workers.schema.tables import metadata_of
from workers.shipping.carriers import DOMESTIC_CARRIER, INTERNATIONAL_CARRIER, tracking_number

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The seconds part of a timestamp as SQLite (SQLAlchemy's "2026-11-30 02:50:01.123456"), PostgreSQL
# ("… 02:50:01.12345+00") and the events ("2026-11-30T02:50:01.123456+00:00") write it; the fraction
# and the offset stay as they are (clones move by whole seconds).
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})([T ])(\d{2}:\d{2}:\d{2})")
# Runs of 32 to 64 lower-case hex digits: the gateway's charge and refund ids ("ch_…"), the
# checkout's body HMAC. Each clone gets fresh random ones of the same length.
HEX = re.compile(r"(?<![0-9a-f])[0-9a-f]{32,64}(?![0-9a-f])")
TRANSPORT_TABLES = ("outbox", "inbox")
# (component, table) → the columns that add up across orders; every other column of such a row
# is left as it is.
AGGREGATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("shop", "stock"): ("sold",),
    ("shop", "order_counts"): ("orders",),
    ("orders", "sales"): ("pairs", "revenue_cents"),
}
# Tables whose rows the templates never touch, and which a template's clone must not either.
STATIC_TABLES = {("shop", "products")}
# Operations' own bookkeeping, a row per queue or per directory, not per order: the relay's
# redelivery sweep may rewrite it while the templates run; a clone has nothing to add to it.
BOOKKEEPING = {("operations", "subscriber_lag"), ("operations", "archive_dirs")}


class UnplacedRow(RuntimeError):
    """A row the templates wrote that names no template order and is no known aggregate."""


def tables_of(component: str) -> list[Table]:
    """Every table of the component's database, the kit's outbox and inbox included."""
    return [table for metadata in metadata_of(component) for table in metadata.sorted_tables]


def columns_of(table: Table) -> list[str]:
    """The columns a clone writes: all but an autoincrement key, which the database assigns."""
    auto = table.autoincrement_column
    return [column.name for column in table.columns if column is not auto]


# ----------------------------------------------------------------------------------------------
# Reading rows as the database stores them


class RawStore:
    """Rows in and out of every component's database as stored text, no types applied."""

    def read(self, component: str, table: Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def write(
        self, component: str, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        raise NotImplementedError

    def add(
        self, component: str, table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]
    ) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteStore(RawStore):
    """One file per component (``<data_dir>/<component>.db``). Writes go without fsync
    (``synchronous=OFF``): the bench's shop is stopped while it seeds; a crash means a new run."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._conns = {}
        for component, path in paths.items():
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            self._conns[component] = conn

    def read(self, component: str, table: Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        listed = ", ".join(f'"{name}"' for name in columns)
        return list(self._conns[component].execute(f'SELECT {listed} FROM "{table.name}"'))

    def write(
        self, component: str, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        listed = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join("?" for _ in columns)
        self._conns[component].executemany(
            f'INSERT INTO "{table.name}" ({listed}) VALUES ({marks})', rows
        )

    def add(
        self, component: str, table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]
    ) -> None:
        sets = ", ".join(f'"{name}" = "{name}" + ?' for name in deltas)
        where = " AND ".join(f'"{name}" = ?' for name in key)
        cursor = self._conns[component].execute(
            f'UPDATE "{table.name}" SET {sets} WHERE {where}', [*deltas.values(), *key.values()]
        )
        if cursor.rowcount == 0:
            names = [*key, *deltas]
            listed = ", ".join(f'"{name}"' for name in names)
            marks = ", ".join("?" for _ in names)
            self._conns[component].execute(
                f'INSERT INTO "{table.name}" ({listed}) VALUES ({marks})',
                [*key.values(), *deltas.values()],
            )

    def commit(self) -> None:
        for conn in self._conns.values():
            conn.execute("COMMIT")
            conn.execute("BEGIN")

    def close(self) -> None:
        for conn in self._conns.values():
            conn.execute("COMMIT")
            conn.close()


class PostgresStore(RawStore):
    """One database, a schema per component (as workers.messaging.database lays them out);
    rows travel as COPY text in a UTC session, so they are exactly what the server prints."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, options="-c timezone=UTC")

    def read(self, component: str, table: Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        listed = ", ".join(f'"{name}"' for name in columns)
        statement = f'COPY "{component}"."{table.name}" ({listed}) TO STDOUT'
        with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            return [tuple(row) for row in copy.rows()]

    def write(
        self, component: str, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        listed = ", ".join(f'"{name}"' for name in columns)
        statement = f'COPY "{component}"."{table.name}" ({listed}) FROM STDIN'
        with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def add(
        self, component: str, table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]
    ) -> None:
        target = f'"{component}"."{table.name}"'
        sets = ", ".join(f'"{name}" = "{name}" + %s' for name in deltas)
        where = " AND ".join(f'"{name}" = %s' for name in key)
        with self._conn.cursor() as cursor:
            cursor.execute(
                f"UPDATE {target} SET {sets} WHERE {where}", [*deltas.values(), *key.values()]
            )
            if cursor.rowcount == 0:
                names = [*key, *deltas]
                listed = ", ".join(f'"{name}"' for name in names)
                marks = ", ".join("%s" for _ in names)
                cursor.execute(
                    f"INSERT INTO {target} ({listed}) VALUES ({marks})",
                    [*key.values(), *deltas.values()],
                )

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.commit()
        self._conn.close()


def snapshot(store: RawStore) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Every row of every table of every component, as stored (autoincrement keys left out)."""
    found = {}
    for component in COMPONENTS:
        for table in tables_of(component):
            found[(component, table.name)] = store.read(component, table, columns_of(table))
    return found


# ----------------------------------------------------------------------------------------------
# Templates: the rows each real order left, with their ids and times made into slots


@dataclass(frozen=True)
class Slot:
    """A cell of a template row: a format string, or a value kept as it is (numbers, NULL)."""

    text: str | None
    value: Any = None


@dataclass
class Template:
    """The rows one real order left, per (component, table), ready to clone."""

    order_id: str
    placed_at: datetime
    email: str
    rows: dict[tuple[str, str], list[tuple[Slot, ...]]] = field(default_factory=dict)
    uuids: list[str] = field(default_factory=list)
    times: list[tuple[datetime, str]] = field(default_factory=list)
    hexes: list[str] = field(default_factory=list)
    # A tracking number → (the shipment id's slot, the carrier it was minted for).
    derived: dict[str, tuple[int, str]] = field(default_factory=dict)

    def compile(self, cell: Any) -> Slot:
        if not isinstance(cell, str) or not (
            self.email in cell
            or UUID.search(cell)
            or TIMESTAMP.search(cell)
            or HEX.search(cell)
            or any(literal in cell for literal in self.derived)
        ):
            return Slot(None, cell)
        text = cell.replace("{", "{{").replace("}", "}}").replace(self.email, "{email}")
        for literal in self.derived:
            text = text.replace(literal, f"{{d_{literal}}}")
        text = UUID.sub(lambda match: f"{{u{self._uuid_slot(match.group(0))}}}", text)
        text = HEX.sub(lambda match: f"{{h{self._slot(self.hexes, match.group(0))}}}", text)
        return Slot(TIMESTAMP.sub(lambda match: f"{{t{self._time_slot(match)}}}", text))

    def derive(self, text: str) -> None:
        """Find the values minted from the order's ids in ``text`` (every row of the order):
        a shipment's tracking number, so a clone's is minted from the clone's shipment id."""
        for value in UUID.findall(text):
            for carrier in (DOMESTIC_CARRIER, INTERNATIONAL_CARRIER):
                minted = tracking_number(carrier, value)
                if minted in text:
                    self.derived[minted] = (self._uuid_slot(value), carrier)

    @staticmethod
    def _slot(found: list[str], value: str) -> int:
        if value not in found:
            found.append(value)
        return found.index(value)

    def _uuid_slot(self, value: str) -> int:
        return self._slot(self.uuids, value)

    def _time_slot(self, match: re.Match[str]) -> int:
        moment = datetime.fromisoformat(f"{match.group(1)}T{match.group(3)}")
        key = (moment, match.group(2))
        if key not in self.times:
            self.times.append(key)
        return self.times.index(key)

    def values(self, shift: timedelta, email: str) -> dict[str, str]:
        """A clone's slot values: fresh UUIDs and tokens, the values minted from them, times
        moved by ``shift``, its own email."""
        out = {f"u{index}": str(uuid.uuid4()) for index in range(len(self.uuids))}
        for index, value in enumerate(self.hexes):
            out[f"h{index}"] = secrets.token_hex(len(value) // 2)
        for literal, (index, carrier) in self.derived.items():
            out[f"d_{literal}"] = tracking_number(carrier, out[f"u{index}"])
        for index, (moment, sep) in enumerate(self.times):
            out[f"t{index}"] = (moment + shift).strftime(f"%Y-%m-%d{sep}%H:%M:%S")
        out["email"] = email
        return out


def clone_row(row: Sequence[Slot], values: Mapping[str, str]) -> tuple[Any, ...]:
    return tuple(cell.value if cell.text is None else cell.text.format_map(values) for cell in row)


@dataclass
class Recording:
    """What the templates wrote: per-order rows (as templates) and each aggregate's change."""

    templates: list[Template]
    aggregates: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, int]]]]


def record(
    before: Mapping[tuple[str, str], list[tuple[Any, ...]]],
    after: Mapping[tuple[str, str], list[tuple[Any, ...]]],
    orders: Sequence[tuple[str, datetime, str]],
) -> Recording:
    """Split what changed between two snapshots into each template order's rows and the
    aggregates' changes. ``orders``: (order id, placed at, the customer's email) of each template.
    Raises UnplacedRow for a new or changed row that belongs to no order and no aggregate, or
    that names two of them."""
    templates = [Template(order_id, placed_at, email) for order_id, placed_at, email in orders]
    owner = {template.order_id: template for template in templates}
    # An event's id belongs to the order it is about: every event is in some outbox, whose
    # subject names the order.
    for component in COMPONENTS:
        outbox = _table(component, "outbox")
        names = columns_of(outbox)
        for row in _new_rows(before[(component, "outbox")], after[(component, "outbox")]):
            cells = dict(zip(names, row, strict=True))
            if cells["subject"] in owner:
                owner[cells["id"]] = owner[cells["subject"]]
    changes: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, int]]]] = {}
    owned: dict[int, list[tuple[tuple[str, str], tuple[Any, ...]]]] = {}
    for component in COMPONENTS:
        for table in tables_of(component):
            where = (component, table.name)
            if where in BOOKKEEPING:
                continue
            new = _new_rows(before[where], after[where])
            if where in AGGREGATES:
                changes[where] = _aggregate_changes(
                    table, columns_of(table), AGGREGATES[where], before[where], after[where]
                )
                continue
            if new and where in STATIC_TABLES:
                raise UnplacedRow(f"the templates changed {component}.{table.name}")
            for row in new:
                owned.setdefault(id(_owner_of(row, owner, where)), []).append((where, row))
    for template in templates:
        rows = owned.get(id(template), [])
        template.derive(" ".join(str(cell) for _, row in rows for cell in row))
        for where, row in rows:
            compiled = tuple(template.compile(cell) for cell in row)
            template.rows.setdefault(where, []).append(compiled)
    return Recording(templates, changes)


def _table(component: str, name: str) -> Table:
    return next(table for table in tables_of(component) if table.name == name)


def _new_rows(
    old: Sequence[tuple[Any, ...]], new: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    remaining = Counter(old)
    out = []
    for row in new:
        if remaining[row]:
            remaining[row] -= 1
        else:
            out.append(row)
    return out


def _owner_of(
    row: tuple[Any, ...], owner: Mapping[str, Template], where: tuple[str, str]
) -> Template:
    text = " ".join(str(cell) for cell in row if cell is not None)
    found = {id(owner[value]): owner[value] for value in UUID.findall(text) if value in owner}
    if len(found) != 1:
        what = "names no template order" if not found else "names several template orders"
        raise UnplacedRow(f"a new row of {where[0]}.{where[1]} {what}: {text[:200]}")
    return next(iter(found.values()))


def _aggregate_changes(
    table: Table,
    names: Sequence[str],
    summed: Sequence[str],
    old: Sequence[tuple[Any, ...]],
    new: Sequence[tuple[Any, ...]],
) -> list[tuple[dict[str, Any], dict[str, int]]]:
    """(primary key, {column: change}) of each row whose summed columns moved."""
    keys = [column.name for column in table.primary_key.columns]

    def by_key(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {
            tuple(cells[k] for k in keys): cells
            for cells in (dict(zip(names, row, strict=True)) for row in rows)
        }

    was, now = by_key(old), by_key(new)
    out = []
    for key, cells in now.items():
        deltas = {
            name: int(cells[name]) - int((was.get(key) or {}).get(name) or 0) for name in summed
        }
        if any(deltas.values()):
            out.append((dict(zip(keys, key, strict=True)), deltas))
    return out


# ----------------------------------------------------------------------------------------------
# Cloning


@dataclass(frozen=True)
class Layout:
    """Where in time clones go: ``anchor`` is the newest clone's placing time (UTC, naive, as the
    templates' cells are read), one clone every ``spacing``; transport rows only within the
    retentions."""

    anchor: datetime
    spacing: timedelta
    outbox_retention: timedelta
    inbox_retention: timedelta


def seed(
    store: RawStore,
    recording: Recording,
    layout: Layout,
    first: int,
    generations: int,
    *,
    batch: int = 2000,
) -> list[str]:
    """Write ``generations`` clones of every template, clone numbers ``first`` onwards (clone g is
    placed g spacings before the anchor, so later numbers are older), and advance the aggregates
    as many times; returns the clones' order ids. Commits every ``batch`` clones."""
    templates = recording.templates
    count = generations * len(templates)
    seeded: list[str] = []
    for start in range(0, count, batch):
        pending: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        ids = []
        for offset in range(start, min(start + batch, count)):
            number = first + offset
            template = templates[number % len(templates)]
            placed = layout.anchor - number * layout.spacing
            age = layout.anchor - placed
            shift = timedelta(seconds=round((placed - template.placed_at).total_seconds()))
            values = template.values(shift, f"customer{number}@example.com")
            for where, rows in template.rows.items():
                if where[1] == "outbox" and age > layout.outbox_retention:
                    continue
                if where[1] == "inbox" and age > layout.inbox_retention:
                    continue
                pending.setdefault(where, []).extend(clone_row(row, values) for row in rows)
            ids.append(values[f"u{template.uuids.index(template.order_id)}"])
        for (component, name), rows in pending.items():
            table = _table(component, name)
            store.write(component, table, columns_of(table), rows)
        store.commit()
        seeded.extend(ids)
    for (component, name), changes in recording.aggregates.items():
        table = _table(component, name)
        for key, deltas in changes:
            store.add(component, table, key, {k: d * generations for k, d in deltas.items()})
    store.commit()
    return seeded
