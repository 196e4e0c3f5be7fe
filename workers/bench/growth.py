"""``shoeshop bench growth --to N``: do reads, checkouts and storage stay flat as history grows?

The run, on the embedded Redis and SQLite files (or a PostgreSQL server, ``--database-url``):

1. The whole shop starts (``shoeshop up``) and places ``TEMPLATE_ORDERS`` real orders (most
   shipped, one declined and cancelled); once every component is done with them it stops, and
   ``growth_seed`` records the rows they left.
2. For each size (1,000, 10,000, 100,000 … N orders stored) the history is topped up with clones
   of those rows (the shop stopped meanwhile), the bytes on disk are measured, and the web
   process alone is started (the Procfile's ``web`` line: what serves the reads and checkouts;
   and the payment gateway, whose public key seals the checkout's card).
3. One unmeasured round, then ``--rounds`` rounds of ``--requests`` timed requests each, from
   ``--clients`` threads:
   ``GET /api/orders/<id>`` and the tracking stream's first frame (``GET /orders/<id>/events``)
   for orders drawn from the whole history, then as many checkouts. Each size reports the median
   over the rounds of each round's p50 and p99.

The checkouts add to the history (they are real orders, left PLACED: no worker runs during the
measurement); the reads of a size are all measured before them, at the size named.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from sqlalchemy.engine import make_url

from config.settings import COMPONENTS, Settings
from workers.bench import growth_seed, measure, report
from workers.bench.load import fetch_products, order_bodies
from workers.bench.stack import CHECKOUT_LIMIT_NOTE, PROJECT_ROOT, Broker, SystemStack
from workers.launcher import procfile_processes

# Ten orders: nine shipped and one cancelled (a declined card), so a tenth of the history is a
# cancellation with its refusal, as a shop's history has some.
TEMPLATE_ORDERS = 10
DECLINED_CARD = "4000000000000002"
SMALLEST = 1000
# Every stock row gets this many pairs more once: the bench's checkouts must not run out.
RESTOCK = 1_000_000
SETTLE_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
TRANSPORT = growth_seed.TRANSPORT_TABLES


@dataclass(frozen=True)
class GrowthOptions:
    """What ``shoeshop bench growth`` was asked: sizes up to ``to`` orders, ``requests`` timed
    requests of each kind per round, ``rounds`` rounds, from ``clients`` threads; history laid out
    at ``per_day`` orders a day."""

    to: int
    database_url: str | None
    requests: int
    rounds: int
    clients: int
    per_day: int
    out_dir: Path
    keep: bool


def sizes(to: int) -> list[int]:
    """1,000, 10,000, 100,000 … below ``to``, then ``to`` itself. Raises ValueError below 1,000."""
    if to < SMALLEST:
        raise ValueError(f"--to must be at least {SMALLEST}")
    out = []
    size = SMALLEST
    while size < to:
        out.append(size)
        size *= 10
    return [*out, to]


def run_growth(options: GrowthOptions) -> dict[str, Any]:
    """The whole run; writes ``growth-<stamp>.json`` and ``.png`` under ``out_dir`` and returns
    the result. Raises click.ClickException when the shop fails to start or to finish a
    template order, growth_seed.UnplacedRow when the templates wrote a row it cannot place."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # SIGTERM (a CI job's timeout, `kill`) unwinds like Ctrl-C: the shop's processes are stopped
    # and the run's database dropped by the finally blocks below.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    database = Database.open(options.database_url, stamp)
    run_dir = (options.out_dir / f"growth-run-{stamp}").resolve()
    (run_dir / "logs").mkdir(parents=True)
    data_dir = run_dir / "data"
    broker = Broker.open(None, run_dir)
    result: dict[str, Any] = {
        "started": stamp,
        "machine": report.machine(),
        "database": "postgresql" if options.database_url else "sqlite",
        "broker": "embedded redis",
        "requests_per_round": options.requests,
        "rounds": options.rounds,
        "clients": options.clients,
        "orders_per_day": options.per_day,
        "growth": [],
    }
    try:
        recording = record_templates(broker, data_dir, database, run_dir)
        click.echo(
            f"recorded {len(recording.templates)} template orders "
            f"({sum(len(rows) for t in recording.templates for rows in t.rows.values())} rows)"
        )
        result["growth"] = _grow_and_measure(
            options, broker, data_dir, database, run_dir, recording
        )
    finally:
        broker.close()
        if not options.keep:
            database.drop()
    json_path = options.out_dir / f"growth-{stamp}.json"
    report.write_json(result, json_path)
    write_png(json_path.with_suffix(".png"), result["growth"])
    click.echo(table(result["growth"]))
    click.echo(f"note: {CHECKOUT_LIMIT_NOTE}")
    click.echo(f"written: {json_path} and {json_path.with_suffix('.png')}")
    if not options.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# ----------------------------------------------------------------------------------------------
# The databases


@dataclass
class Database:
    """SQLite files under the run's data directory, or a PostgreSQL database of the run's own,
    created on the server ``--database-url`` names and dropped afterwards."""

    url: str | None
    server_url: str | None = None
    name: str | None = None

    @classmethod
    def open(cls, server_url: str | None, stamp: str) -> Database:
        if server_url is None:
            return cls(None)
        import psycopg

        name = f"shoeshop_growth_{stamp.lower()}"
        try:
            with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            message = f"--database-url: cannot create a database there: {first}"
            raise click.ClickException(message) from None
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        return cls(url, server_url, name)

    def env(self) -> dict[str, str]:
        return {"SHOESHOP_DATABASE_URL": self.url} if self.url else {}

    def store(self, data_dir: Path) -> growth_seed.RawStore:
        if self.url is None:
            return growth_seed.SqliteStore({c: str(data_dir / f"{c}.db") for c in COMPONENTS})
        return growth_seed.PostgresStore(_libpq(self.url))

    def disk_bytes(self, data_dir: Path) -> dict[str, int]:
        """Bytes on disk of the transport tables (outbox, inbox, with their indexes) and of all
        the rest, every component summed."""
        if self.url is None:
            return _sqlite_bytes(data_dir)
        return _postgres_bytes(_libpq(self.url))

    def settle(self) -> None:
        """After a bulk load, PostgreSQL's statistics and visibility map are behind what a
        database that grew over a year would have (autovacuum keeps them current there):
        VACUUM ANALYZE, so the measurement meets neither stale plans nor autovacuum catching up;
        then a CHECKPOINT, so the load's dirty pages are not being written out while it runs.
        SQLite has nothing of the kind to do."""
        if self.url is None:
            return
        import psycopg

        with psycopg.connect(_libpq(self.url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")

    def drop(self) -> None:
        if self.server_url is None:
            return
        import psycopg

        with psycopg.connect(_libpq(self.server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    """A SQLAlchemy-style URL as libpq takes it (no ``+driver``)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_bytes(data_dir: Path) -> dict[str, int]:
    import sqlite3

    transport = total = 0
    for component in COMPONENTS:
        path = data_dir / f"{component}.db"
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            owners = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
            for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                if owners.get(name, name) in TRANSPORT:
                    transport += int(size)
        finally:
            conn.close()
        total += sum(p.stat().st_size for p in data_dir.glob(f"{component}.db*"))
    return {"transport": transport, "kept": total - transport}


def _postgres_bytes(url: str) -> dict[str, int]:
    import psycopg

    transport = kept = 0
    with psycopg.connect(url) as conn:
        for component in COMPONENTS:
            for table in growth_seed.tables_of(component):
                (size,) = conn.execute(
                    "SELECT pg_total_relation_size(%s)", (f'"{component}"."{table.name}"',)
                ).fetchone() or (0,)
                if table.name in TRANSPORT:
                    transport += int(size)
                else:
                    kept += int(size)
    return {"transport": transport, "kept": kept}


# ----------------------------------------------------------------------------------------------
# Templates


def record_templates(
    broker: Broker, data_dir: Path, database: Database, run_dir: Path, copies: int = 1
) -> growth_seed.Recording:
    """Start the whole shop, place the template orders (``copies`` times each: a test compares
    clones of the first with the real rows of the others), wait until every component is done
    with them, stop the shop, record their rows, and restock."""
    stack = SystemStack.start(broker, data_dir, run_dir / "logs/templates.log", env=database.env())
    try:
        store = database.store(data_dir)
        try:
            before = growth_seed.snapshot(store)
        finally:
            store.close()
        placed = [order for _ in range(copies) for order in _place_templates(stack.url)]
        _wait_final(stack.url, [order_id for order_id, _, _ in placed])
        _wait_settled(database, data_dir)
    finally:
        stack.stop()
    store = database.store(data_dir)
    try:
        recording = growth_seed.record(before, growth_seed.snapshot(store), placed)
        stock = growth_seed.tables_of("shop")
        table = next(t for t in stock if t.name == "stock")
        for sku, size in store.read("shop", table, ["sku", "size"]):
            store.add("shop", table, {"sku": sku, "size": size}, {"available": RESTOCK})
    finally:
        store.close()
    return recording


def _place_templates(url: str) -> list[tuple[str, datetime, str]]:
    bodies = order_bodies(fetch_products(url))
    placed = []
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for index in range(TEMPLATE_ORDERS):
            body = next(bodies)
            email = f"growth-template-{uuid.uuid4().hex[:12]}@example.com"
            body["customer"]["email"] = email
            if index == TEMPLATE_ORDERS - 1:
                body["payment"]["card_number"] = DECLINED_CARD
            at = datetime.now(UTC).replace(tzinfo=None)
            response = client.post(
                f"{url}/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            if response.status_code != 202:
                raise click.ClickException(f"a template checkout failed: {response.text[:200]}")
            placed.append((response.json()["id"], at, email))
    return placed


def _wait_final(url: str, order_ids: Sequence[str]) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    waiting = set(order_ids)
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        while waiting and time.monotonic() < deadline:
            for order_id in sorted(waiting):
                view = client.get(f"{url}/api/orders/{order_id}").json()
                if view.get("status") in ("SHIPPED", "CANCELLED"):
                    waiting.discard(order_id)
            time.sleep(0.5)
    if waiting:
        raise click.ClickException(f"template orders not finished: {sorted(waiting)}")


def _wait_settled(database: Database, data_dir: Path) -> None:
    """Until no table's row count moves for two seconds: every subscriber has applied every
    event, and every outbox row is published."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        store = database.store(data_dir)
        try:
            now = {where: len(rows) for where, rows in growth_seed.snapshot(store).items()}
            unpublished = _unpublished(store)
        finally:
            store.close()
        if now == last and not unpublished:
            return
        last = now
        time.sleep(2.0)
    raise click.ClickException("the templates' rows did not settle")


def _unpublished(store: growth_seed.RawStore) -> int:
    count = 0
    for component in COMPONENTS:
        outbox = next(t for t in growth_seed.tables_of(component) if t.name == "outbox")
        count += sum(1 for (at,) in store.read(component, outbox, ["published_at"]) if at is None)
    return count


# ----------------------------------------------------------------------------------------------
# Growing and measuring


def _grow_and_measure(
    options: GrowthOptions,
    broker: Broker,
    data_dir: Path,
    database: Database,
    run_dir: Path,
    recording: growth_seed.Recording,
) -> list[dict[str, Any]]:
    settings = Settings.from_env()
    layout = growth_seed.Layout(
        anchor=min(t.placed_at for t in recording.templates) - timedelta(minutes=1),
        spacing=timedelta(days=1) / options.per_day,
        outbox_retention=timedelta(seconds=settings.outbox_retention_s),
        inbox_retention=timedelta(seconds=settings.inbox_retention_s),
    )
    web_only = run_dir / "Procfile.web"
    web_only.write_text(_web_lines())
    seeded: list[str] = []
    present = len(recording.templates)
    rows = []
    for size in sizes(options.to):
        generations = max(0, (size - present) // len(recording.templates))
        if generations:
            click.echo(f"seeding {generations * len(recording.templates):,} orders …")
            started = time.monotonic()
            store = database.store(data_dir)
            try:
                seeded += growth_seed.seed(store, recording, layout, len(seeded), generations)
            finally:
                store.close()
            present += generations * len(recording.templates)
            database.settle()
            click.echo(f"  {time.monotonic() - started:.0f}s; {present:,} orders stored")
        disk = database.disk_bytes(data_dir)
        stack = SystemStack.start(
            broker,
            data_dir,
            run_dir / f"logs/web-{size}.log",
            env=database.env(),
            procfile=web_only,
        )
        try:
            figures = _measure_size(stack.url, options, seeded)
        finally:
            stack.stop()
        accepted = figures.pop("checkouts_accepted")
        row = {
            "history": present,
            **figures,
            "disk_bytes_per_order": {k: round(v / present) for k, v in disk.items()},
        }
        present += accepted
        rows.append(row)
        click.echo(table([row], header=not rows[:-1]))
    return rows


def _web_lines() -> str:
    """The Procfile's web line, and Procfile.dev's gateway line, whose public key seals the
    checkout's card."""
    processes = procfile_processes(PROJECT_ROOT / "Procfile")
    if "web" not in processes or "gateway" not in processes:
        raise click.ClickException("the Procfiles lack the web or the gateway line")
    return "".join(f"{name}: {processes[name]}\n" for name in ("web", "gateway"))


def _measure_size(url: str, options: GrowthOptions, seeded: Sequence[str]) -> dict[str, Any]:
    picks = random.Random(len(seeded))
    reads: list[dict[str, float]] = []
    frames: list[dict[str, float]] = []
    checkouts: list[dict[str, float]] = []
    accepted = 0
    bodies = order_bodies(fetch_products(url))
    # One whole round unmeasured first: each web process loads its modules, opens its pools,
    # fetches the gateway's key and reads the catalogue once, and the database's caches meet the
    # pages a round touches (on PostgreSQL after a bulk load the first round at a million orders
    # had a checkout tail twice the third's: docs/performance.md).
    warm = [picks.choice(seeded) for _ in range(options.requests)]
    _timed(options.clients, warm, lambda c, i: _read(c, url, i))
    _timed(1, warm, lambda c, i: _first_frame(c, url, i))
    _timed(options.clients, [next(bodies) for _ in warm], lambda c, b: _checkout(c, url, b))
    accepted += len(warm)
    for _ in range(options.rounds):
        sample = [picks.choice(seeded) for _ in range(options.requests)]
        reads.append(_timed(options.clients, sample, lambda c, i: _read(c, url, i)))
        sample = [picks.choice(seeded) for _ in range(options.requests)]
        # One client: the stream endpoint serves two streams per web process, and a stream's
        # slot is given back just after its last byte, so two clients could meet a busy one.
        frames.append(_timed(1, sample, lambda c, i: _first_frame(c, url, i)))
    for _ in range(options.rounds):
        batch = [next(bodies) for _ in range(options.requests)]
        checkouts.append(_timed(options.clients, batch, lambda c, b: _checkout(c, url, b)))
        accepted += options.requests
    return {
        "order_read_ms": _median_of(reads),
        "stream_first_frame_ms": _median_of(frames),
        "checkout_ms": _median_of(checkouts),
        "rounds": {
            "order_read_ms": reads,
            "stream_first_frame_ms": frames,
            "checkout_ms": checkouts,
        },
        "checkouts_accepted": accepted,
    }


def _median_of(rounds: Sequence[dict[str, float]]) -> dict[str, float | None]:
    return {q: measure.median(r[q] for r in rounds) for q in ("p50", "p99")}


def _timed(
    clients: int, work: Sequence[Any], call: Callable[[httpx.Client, Any], float | None]
) -> dict[str, float]:
    """Run ``call`` on each item from ``clients`` threads (a client each); p50 and p99 in ms of
    the seconds each call returns, or else of its whole duration. Raises click.ClickException
    when any request fails: a slow answer is a figure, an error is a broken shop."""
    local = threading.local()
    opened: list[httpx.Client] = []
    lock = threading.Lock()

    def one(item: Any) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=REQUEST_TIMEOUT_S)
            with lock:
                opened.append(local.client)
        started = time.perf_counter()
        took = call(local.client, item)
        return time.perf_counter() - started if took is None else took

    try:
        with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="growth") as pool:
            seconds = list(pool.map(one, work))
    finally:
        for client in opened:
            client.close()
    summary = measure.summary_ms(seconds)
    return {"p50": summary["p50"], "p99": summary["p99"]}


def _read(client: httpx.Client, url: str, order_id: str) -> None:
    response = client.get(f"{url}/api/orders/{order_id}")
    if response.status_code != 200:
        raise click.ClickException(f"GET /api/orders/{order_id}: {response.status_code}")


def _first_frame(client: httpx.Client, url: str, order_id: str) -> float:
    """Seconds to the first ``data:`` line; then the rest is read (a final order's stream ends
    after it), so the server is done with the stream before the next one opens."""
    started = time.perf_counter()
    took = None
    with client.stream("GET", f"{url}/orders/{order_id}/events") as response:
        if response.status_code != 200:
            raise click.ClickException(f"the stream of {order_id}: {response.status_code}")
        for line in response.iter_lines():
            if took is None and line.startswith("data:"):
                took = time.perf_counter() - started
    if took is None:
        raise click.ClickException(f"the stream of {order_id} ended without a frame")
    return took


def _checkout(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    response = client.post(f"{url}/api/orders", json=body)
    if response.status_code != 202:
        raise click.ClickException(f"a checkout: {response.status_code} {response.text[:200]}")


# ----------------------------------------------------------------------------------------------
# Report


MEASURES = (
    ("order_read_ms", "GET /api/orders/<id>"),
    ("stream_first_frame_ms", "tracking stream, first frame"),
    ("checkout_ms", "checkout"),
)


def table(rows: Sequence[dict[str, Any]], *, header: bool = True) -> str:
    """The sizes as a Markdown table: each measure's p50 / p99 (ms), bytes on disk per order."""
    lines = []
    if header:
        lines.append(
            "| orders stored | order read p50 / p99 | first frame p50 / p99 "
            "| checkout p50 / p99 | bytes/order transport | bytes/order kept |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [f"{row['history']:,}"]
        for key, _ in MEASURES:
            cells.append(f"{row[key]['p50']} / {row[key]['p99']}")
        disk = row["disk_bytes_per_order"]
        cells += [f"{disk['transport']:,}", f"{disk['kept']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_png(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """p50 and p99 of each measure against orders stored (left, log x), and bytes on disk per
    order, transport and kept (right)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    history = [row["history"] for row in rows]
    for key, label in MEASURES:
        for q, style in (("p50", "--"), ("p99", "-")):
            left.plot(
                history, [row[key][q] for row in rows], style, marker="o", label=f"{label} {q}"
            )
    left.set_xscale("log")
    left.set_xlabel("orders stored (log scale)")
    left.set_ylabel("ms")
    left.set_title("Latency as history grows")
    left.legend(fontsize="small")
    for part in ("transport", "kept"):
        right.plot(
            history, [row["disk_bytes_per_order"][part] for row in rows], marker="o", label=part
        )
    right.set_xscale("log")
    right.set_xlabel("orders stored (log scale)")
    right.set_ylabel("bytes on disk per order")
    right.set_title("Storage per order")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
