"""Transport tables level off: the relay's retention chore prunes published outbox rows and
inbox rows past their horizons, archives them when asked, and a dead letter older than the inbox
horizon is replayed only with --force (issue #14, retention).

On the real worker, broker and databases, with retentions of seconds; the clock is the real one.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from config.settings import QUEUES, get_settings
from tests.support.integration import published_at
from tests.support.shop import order_body, wait_for
from workers.messaging import deadletters
from workers.messaging.contracts import (
    MessageParked,
    OrderStatusChanged,
    PaymentDeclined,
    new_event,
)
from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.tables import inbox, outbox
from workers.operations import dlq, retention
from workers.operations.dlq_cli import dlq as dlq_command

pytestmark = pytest.mark.usefixtures("worker")

SECONDS = timedelta(seconds=2)
LOAD_S = 20  # seconds of steady orders
# One order a second: a rate the in-process worker keeps up with while make test's other lanes
# hold both cores (at two a second, on 2026-12-01, it fell behind and wrote its rows in waves).
ORDER_EVERY_S = 1.0


def transport_rows() -> int:
    """Rows in every outbox and inbox, now."""
    total = 0
    for component in EMITTING_COMPONENTS:
        with engine_for(component).connect() as conn:
            total += conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            total += conn.execute(select(func.count()).select_from(inbox)).scalar_one()
    return total


def prune_within(window: timedelta, archive_dir: Path | None = None) -> int:
    return retention.prune(
        utcnow(), outbox_retention=window, inbox_retention=window, archive_dir=archive_dir
    )


def place(client: FlaskClient, size: str) -> str:
    response = client.post("/api/orders", json=order_body(sku="CRT-001", size=size))
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def test_under_a_steady_order_rate_the_transport_tables_level_off(client: FlaskClient) -> None:
    written = prune_within(SECONDS)  # what earlier tests left is past any window of seconds
    samples: list[int] = []
    placed: list[str] = []
    # An order every ORDER_EVERY_S on a fixed schedule (a late one is not followed by an early
    # one), a prune and a count once a second. A rate the worker keeps up with on a busy
    # machine (make test runs other suites beside this one): rows are written when the worker
    # applies events, so a worker falling behind and catching up would write them in waves.
    started = time.monotonic()
    for tick in range(int(LOAD_S / ORDER_EVERY_S)):
        placed.append(place(client, ("38", "39")[tick % 2]))
        if tick % int(1 / ORDER_EVERY_S) == 0:
            written += prune_within(SECONDS)
            samples.append(transport_rows())
        time.sleep(max(0.0, started + (tick + 1) * ORDER_EVERY_S - time.monotonic()))
    wait_for(lambda: all(status_of(client, oid) == "SHIPPED" for oid in placed), timeout_s=60)

    # Past the first window the rows on hand stop growing while orders keep coming: the last
    # seconds hold about what the first seconds after the window did. (Medians: the workers
    # write in bursts when the machine is busy, and one sample may catch one.) Without pruning
    # they would grow with every order, to about twice as many or more by then.
    steady = samples[int(SECONDS.total_seconds()) + 1 :]
    third = len(steady) // 3
    assert third >= 2, samples
    early, late = statistics.median(steady[:third]), statistics.median(steady[-third:])
    assert late <= 1.5 * early + 20, samples
    written += transport_rows()
    assert max(steady) < written / 2, (samples, written, len(placed))


def status_of(client: FlaskClient, order_id: str) -> str:
    return str(client.get(f"/api/orders/{order_id}").get_json()["status"])


@pytest.fixture
def lost_events() -> Iterator[list[Envelope]]:
    """Events in the payments outbox, published a minute ago, and inbox rows a minute old."""
    order_id = str(uuid.uuid4())
    events = [
        new_event(
            PaymentDeclined(order_id=order_id, payment_id=str(uuid.uuid4()), reason="do_not_honor"),
            source="/payments",
            subject=order_id,
        )
        for _ in range(3)
    ]
    minute_ago = utcnow() - timedelta(minutes=1)
    published_at("payments", events, minute_ago)
    with transaction("payments") as conn:
        conn.execute(
            insert(inbox),
            [
                {
                    "event_id": event.id,
                    "consumer": "payments.on_payment_requested",
                    "attempts": 1,
                    "processed_at": minute_ago,
                }
                for event in events
            ],
        )
    yield events


def test_what_is_pruned_is_archived_one_row_a_line(
    lost_events: list[Envelope], tmp_path: Path
) -> None:
    ids = {event.id for event in lost_events}

    removed = retention.prune(
        utcnow(),
        outbox_retention=timedelta(seconds=30),
        inbox_retention=timedelta(seconds=30),
        archive_dir=tmp_path,
        outboxes=["payments"],
        inboxes=["payments"],
    )

    assert removed >= 2 * len(ids)
    day = utcnow().date().isoformat()
    archived = [
        json.loads(line)
        for line in (tmp_path / f"payments-outbox-{day}.jsonl").read_text("utf-8").splitlines()
    ]
    assert ids <= {row["id"] for row in archived}
    one = next(row for row in archived if row["id"] in ids)
    assert Envelope.from_dict(one["event"]).id == one["id"]  # the whole event, readable again
    consumed = (tmp_path / f"payments-inbox-{day}.jsonl").read_text("utf-8")
    assert ids <= {json.loads(line)["event_id"] for line in consumed.splitlines()}
    # Readable by the relay's user only: the rows hold customers' names and addresses.
    assert (tmp_path / f"payments-outbox-{day}.jsonl").stat().st_mode & 0o777 == 0o600
    with engine_for("payments").connect() as conn:
        left = conn.execute(select(outbox.c.id).where(outbox.c.id.in_(ids))).all()
        left += conn.execute(select(inbox.c.event_id).where(inbox.c.event_id.in_(ids))).all()
    assert left == []


def test_operations_own_outbox_is_archived_and_a_database_away_leaves_the_rest_pruned(
    lost_events: list[Envelope], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Operations' own rows are archived inside its own pruning transaction: the erased orders
    # are read on that transaction (on SQLite a second connection waited on its write lock and
    # failed, every sweep). And one table that cannot be pruned does not stop the others.
    order_id = str(uuid.uuid4())
    notice = new_event(
        MessageParked(
            order_id=order_id, queue="payments", since=utcnow(), fault="bug", event_id=None
        ),
        source="/operations",
        subject=order_id,
    )
    published_at("operations", [notice], utcnow() - timedelta(minutes=1))
    away = SQLAlchemyError("the shop's database is away")

    def shop_away(component: str, *args: Any) -> int:
        if component == "shop":
            raise away
        return prune_outbox(component, *args)

    prune_outbox = retention._prune_outbox
    monkeypatch.setattr(retention, "_prune_outbox", shop_away)
    with pytest.raises(SQLAlchemyError) as raised:
        retention.prune(
            utcnow(),
            outbox_retention=timedelta(seconds=30),
            inbox_retention=timedelta(seconds=30),
            archive_dir=tmp_path,
            outboxes=["shop", "operations"],
            inboxes=["payments"],
        )

    assert raised.value is away
    day = utcnow().date().isoformat()
    archived = (tmp_path / f"operations-outbox-{day}.jsonl").read_text("utf-8")
    assert notice.id in {json.loads(line)["id"] for line in archived.splitlines()}
    consumed = (tmp_path / f"payments-inbox-{day}.jsonl").read_text("utf-8")
    assert {e.id for e in lost_events} <= {json.loads(x)["event_id"] for x in consumed.splitlines()}


def test_young_rows_and_unpublished_ones_stay(lost_events: list[Envelope]) -> None:
    ids = {event.id for event in lost_events}

    retention.prune(
        utcnow(),
        outbox_retention=timedelta(minutes=5),
        inbox_retention=timedelta(minutes=6),
        outboxes=["payments"],
        inboxes=QUEUES,
    )

    with engine_for("payments").connect() as conn:
        kept = set(conn.execute(select(outbox.c.id).where(outbox.c.id.in_(ids))).scalars())
    assert kept == ids


def old_letter(days: int) -> str:
    """A parked status change written ``days`` ago, about an order the shop never had (applying
    it changes nothing)."""
    order_id = str(uuid.uuid4())
    notice = OrderStatusChanged(order_id=order_id, status="PAID", reason=None)
    event = new_event(notice, source="/orders", subject=order_id)
    written = (utcnow() - timedelta(days=days)).isoformat()
    body: dict[str, Any] = {**event.to_dict(), "time": written}
    return deadletters.park("shop.on_order_status_changed", body, RuntimeError("bug"), 1)


def test_a_letter_older_than_the_inbox_horizon_is_replayed_only_with_force(
    celery_app: Celery,
) -> None:
    horizon_days = get_settings().inbox_retention_s // 86400
    letter_id = old_letter(horizon_days + 1)

    refused = CliRunner().invoke(dlq_command, ["replay", letter_id])
    assert "before the inbox horizon" in refused.output and "--force" in refused.output
    assert dlq.get(letter_id).status == "parked"

    forced = CliRunner().invoke(dlq_command, ["replay", letter_id, "--force"])
    assert forced.exit_code == 0, forced.output
    assert dlq.get(letter_id).status == "replayed"


def test_a_letter_within_the_horizon_is_replayed_as_ever(celery_app: Celery) -> None:
    letter_id = old_letter(1)

    assert dlq.replay(celery_app, letter_id).outcome == "sent"


def pages(component: str) -> int:
    with engine_for(component).connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def bulky_published_a_month_ago(count: int) -> list[Envelope]:
    """``count`` events about one order in shipping's outbox, published 30 days ago."""
    order_id = str(uuid.uuid4())
    bulky = [
        new_event(
            PaymentDeclined(order_id=order_id, payment_id=str(uuid.uuid4()), reason="x" * 50),
            source="/shipping",
            subject=order_id,
        )
        for _ in range(count)
    ]
    published_at("shipping", bulky, utcnow() - timedelta(days=30))
    return bulky


def test_sqlite_gives_the_pruned_pages_back_to_the_disk() -> None:
    if engine_for("shipping").dialect.name != "sqlite":
        pytest.skip("SQLite files only: PostgreSQL's autovacuum reuses the space in place")
    with engine_for("shipping").connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2  # incremental
    bulky_published_a_month_ago(2000)
    grown = pages("shipping")

    retention.prune(utcnow(), outboxes=["shipping"], inboxes=[])

    assert pages("shipping") < grown * 0.6, (grown, pages("shipping"))


def test_sqlite_cuts_its_write_ahead_log_back_after_a_big_prune() -> None:
    # The pool keeps its connections open: without journal_size_limit the log kept its
    # high-water size (tens of megabytes after a big prune) for as long as they lived.
    from workers.messaging.database import SQLITE_WAL_LIMIT_BYTES

    engine = engine_for("shipping")
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite files only")
    # One connection held open throughout, outside any transaction, as a worker's pool holds
    # them: SQLite deletes the log when the last connection closes, and a connection the pool
    # made above its size is closed as soon as it is given back.
    held = engine.raw_connection()
    try:
        bulky = bulky_published_a_month_ago(15000)
        wal = Path(str(engine.url.database) + "-wal")
        grown = wal.stat().st_size

        retention.prune(utcnow(), outboxes=["shipping"], inboxes=[])
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        published_at("shipping", bulky[:1], utcnow())  # the next write starts the log afresh

        assert grown > SQLITE_WAL_LIMIT_BYTES
        assert wal.stat().st_size <= SQLITE_WAL_LIMIT_BYTES, (grown, wal.stat().st_size)
    finally:
        held.close()
