"""A shop that release 0.1.0 left mid-flight comes up under this code after `shoeshop db upgrade`
and loses nothing: waiting orders ship, old orders read as before, the dead letter replays, new
orders work, stock is whole. On the embedded Redis + SQLite and on RabbitMQ + PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import COMPONENTS, get_settings
from shop import readmodel
from tests.support import stack as stacks
from tests.support.invariants import ShopUnderTest, observe, views
from tests.support.processes import Processes
from tests.support.shop import GOOD_CARD, db_current, order_body, wait_for
from tests.upgrade import load
from tests.upgrade.v0_1_0.common import COMPONENTS as RELEASED
from workers.messaging import database
from workers.messaging.embedded_redis import EmbeddedRedis
from workers.messaging.envelope import Envelope, event_name
from workers.messaging.versions import parse
from workers.schema import migrate
from workers.schema.revision import head_revision
from workers.schema.tables import metadata_of

FIXTURE = Path(__file__).parent / "v0_1_0"
BUILDS = {"embedded": FIXTURE / "embedded", "services": FIXTURE / "rabbitmq"}
PROCESSES = ("gateway", "web", "shop", "orders", "payments", "shipping", "relay")
FAST_RETRIES = {
    "SHOESHOP_RETRY_BASE_DELAY": "0.1",
    "SHOESHOP_RETRY_MAX_DELAY": "1",
    "SHOESHOP_MAX_RETRIES": "4",
}
OLD = ("shipped", "declined", "cancelled", "parked")
SHIP_TIMEOUT_S = 90


@dataclass
class Upgraded:
    """The 0.1.0 fixture, upgraded and running under this code."""

    stack: str
    manifest: dict[str, Any]
    shop: ShopUnderTest
    processes: Processes
    current_before: subprocess.CompletedProcess[str]
    upgrade: subprocess.CompletedProcess[str]
    new_orders: list[str] = field(default_factory=list)

    def ids(self, *outcomes: str) -> list[str]:
        return [oid for outcome in outcomes for oid in self.manifest["orders"][outcome]]

    def view(self, order_id: str) -> dict[str, Any]:
        with httpx.Client() as client:
            return self.shop.order(client, order_id)

    def wait_for_status(self, order_id: str, status: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            view = self.view(order_id)
            return view if view["status"] == status else None

        try:
            return wait_for(reached, timeout_s=SHIP_TIMEOUT_S, every_s=0.25)
        except AssertionError:
            raise AssertionError(
                f"order {order_id} is {self.view(order_id)['status']}, not {status}; logs:\n"
                + "\n".join(self.processes.tail(name, 1500) for name in PROCESSES)
            ) from None


def shoeshop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "shoeshop"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def on_embedded_redis(data: Path) -> stacks.Stack:
    """The SQLite files as 0.1.0 left them; its Redis restarted on its append-only file."""
    shutil.copytree(BUILDS["embedded"] / "data", data)
    redis = EmbeddedRedis(data / "redis" / "redis.sock")
    redis.start()
    stack = stacks.Stack(
        "embedded", {"SHOESHOP_DATA_DIR": str(data), "SHOESHOP_BROKER_URL": redis.url}
    )
    stack.cleanups.append(redis.stop)
    return stack


def on_rabbitmq_and_postgres(data: Path) -> stacks.Stack:
    """A fresh vhost and PostgreSQL database holding what 0.1.0's SQLite files and RabbitMQ held."""
    stack = stacks.start_services(data)
    try:
        shutil.copytree(BUILDS["services"] / "data", data)  # the gateway's keys and ledger
        load.sqlite_into_postgres(data, stack.env["SHOESHOP_DATABASE_URL"])
        load.republish(BUILDS["services"], stack.env["SHOESHOP_BROKER_URL"])
    except BaseException:
        stack.close()
        raise
    return stack


@pytest.fixture(scope="module", params=list(BUILDS))
def upgraded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgraded]:
    base = tmp_path_factory.mktemp(f"upgrade-{request.param}")
    if request.param == "services" and (reason := stacks.services_missing()):
        if stacks.services_required():
            pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    manifest = json.loads((BUILDS[request.param] / "manifest.json").read_text())
    if request.param == "embedded":
        stack = on_embedded_redis(base / "var")
    else:
        stack = on_rabbitmq_and_postgres(base / "var")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    env.update(stack.env, **FAST_RETRIES, SHOESHOP_ADMIN_PASSWORD="upgrade")
    processes = Processes(env, base / "logs")
    try:
        current_before = shoeshop(env, "db", "current")
        upgrade = shoeshop(env, "db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr[-3000:]
        processes.start_all(PROCESSES)
        shop = ShopUnderTest(processes.url("web"), processes.url("gateway"), processes.env)
        yield Upgraded(request.param, manifest, shop, processes, current_before, upgrade)
    finally:
        processes.close()
        stack.close()


def test_db_current_sees_0_1_0s_unversioned_databases_and_upgrade_adopts_them(
    upgraded: Upgraded,
) -> None:
    # Neither 0.1.0's SQLite files nor what it made in PostgreSQL have a version table.
    before = upgraded.current_before
    assert before.returncode == 1, "operations is behind, at least"
    revisions = {component: row[0] for component, row in db_current(before.stdout).items()}
    # notifications came after 0.1.0: its database does not exist yet.
    assert revisions == {**dict.fromkeys(RELEASED, "0.1.0"), "notifications": "-"}

    after = shoeshop(upgraded.processes.env, "db", "current")

    assert after.returncode == 0, after.stdout
    revisions = {component: row[0] for component, row in db_current(after.stdout).items()}
    assert revisions == {component: head_revision(component) for component in COMPONENTS}


# What the shop's own log holds of an order 0.1.0 ran: its own events and orders' notices.
HEARD_BY_THE_SHOP = {"order.placed", "order.cancellation_requested", "order.status_changed"}
TIMELINE_KEYS = ("id", "type", "source", "time", "since_placed_s")


def as_told_now(answered: dict[str, Any]) -> dict[str, Any]:
    """0.1.0's answer about an order as this release tells it: the timeline is the shop's
    projection of what it heard (issue #12), which for an order older than that is the shop's own
    events and orders' status changes (a v1 notice names no other step), without the tasks that
    applied each (the operators' saga view, /admin/orders/<id>); and the reason in words (#13)."""
    timeline = [
        {key: entry[key] for key in TIMELINE_KEYS}
        for entry in answered["timeline"]
        if event_name(entry["type"]) in HEARD_BY_THE_SHOP
    ]
    return {
        **answered,
        "reason_text": readmodel.reason_text(answered["reason"]),
        "timeline": timeline,
    }


def told(upgraded: Upgraded, order_id: str) -> dict[str, Any]:
    """The order's view now, without what operations told the shop since the upgrade."""
    view = upgraded.view(order_id)
    timeline = [entry for entry in view["timeline"] if entry["source"] != "/operations"]
    return {**view, "timeline": timeline}


def test_old_orders_and_the_catalogue_read_as_0_1_0_answered(upgraded: Upgraded) -> None:
    recorded = upgraded.manifest["api"]
    (parked,) = upgraded.ids("parked")
    for order_id in upgraded.ids(*OLD):
        expected = as_told_now(recorded["orders"][order_id])
        # A parked order's delay reaches the shop as an event (the operations schema's 0003
        # writes message.parked, the relay publishes it): a moment after the upgrade, and with
        # a timeline entry of its own.
        with contextlib.suppress(AssertionError):  # the assertion below shows what differs
            wait_for(lambda oid=order_id, want=expected: told(upgraded, oid) == want, 30)
        assert told(upgraded, order_id) == expected, order_id
        notices = [e for e in upgraded.view(order_id)["timeline"] if e["source"] == "/operations"]
        assert [e["type"] for e in notices] == (
            ["shoeshop.message.parked.v1"] if order_id == parked else []
        )
    products = httpx.get(f"{upgraded.shop.url}/api/products", timeout=10).json()
    assert products == recorded["products"]


def test_orders_that_waited_on_the_broker_ship_each_charged_once(upgraded: Upgraded) -> None:
    for order_id in upgraded.ids("waiting"):
        view = upgraded.wait_for_status(order_id, "SHIPPED")
        assert view["payment"]["status"] == "succeeded"
        assert [c["status"] for c in charges_of(upgraded, order_id)] == ["succeeded"]


def test_the_parked_payment_is_listed_and_its_replay_pays_the_order_once(
    upgraded: Upgraded,
) -> None:
    letter = upgraded.manifest["parked_letter"]
    (order_id,) = upgraded.ids("parked")
    listed = json.loads(upgraded.shop.cli("dlq", "list", "--json").stdout)
    assert [entry["id"] for entry in listed] == [letter]
    assert listed[0]["subject"] == order_id

    upgraded.shop.cli("dlq", "replay", letter)

    upgraded.wait_for_status(order_id, "SHIPPED")
    assert [c["status"] for c in charges_of(upgraded, order_id)] == ["succeeded"]
    assert json.loads(upgraded.shop.cli("dlq", "list", "--json").stdout) == []


def test_a_new_order_ships(upgraded: Upgraded) -> None:
    body = order_body(card=GOOD_CARD, sku="RUN-001", size="42")
    response = httpx.post(f"{upgraded.shop.url}/api/orders", json=body, timeout=30)
    assert response.status_code == 202, response.text
    upgraded.new_orders.append(response.json()["id"])

    upgraded.wait_for_status(response.json()["id"], "SHIPPED")


def test_nothing_is_lost_nobody_is_charged_twice_and_every_pair_is_accounted_for(
    upgraded: Upgraded,
) -> None:
    every_order = [*upgraded.ids(*OLD, "waiting"), *upgraded.new_orders]
    initial = {
        (row["sku"], row["size"]): row["available"] for row in upgraded.manifest["stock"]["initial"]
    }

    outcome = observe(upgraded.shop, views(upgraded.shop, every_order), initial=initial)

    assert outcome.problems == []
    assert (outcome.lost, outcome.parked, outcome.charged_twice) == (0, 0, 0)
    shipped = upgraded.ids("shipped", "waiting", "parked") + upgraded.new_orders
    assert outcome.shipped == len(shipped)


def charges_of(upgraded: Upgraded, order_id: str) -> list[dict[str, Any]]:
    return [c for c in upgraded.shop.charges() if c["order_id"] == order_id]


@pytest.mark.parametrize("build", list(BUILDS))
def test_every_event_0_1_0_stored_or_left_on_the_broker_reads_as_its_current_version(
    build: str,
) -> None:
    stored = [*outbox_events(BUILDS[build] / "data"), *dead_letter_events(BUILDS[build] / "data")]
    if build == "services":
        stored += [
            json.loads(message["body"])[0][0]
            for message in json.loads((BUILDS[build] / "messages.json").read_text())
        ]
    assert len(stored) > 50
    for event in stored:
        parse(Envelope.from_dict(event))


def read_only(path: Path) -> sqlite3.Connection:
    # immutable: the fixture's files are opened without a -wal or -shm file appearing beside them
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)


def outbox_events(data: Path) -> list[dict[str, Any]]:
    events = []
    for component in ("shop", "orders", "payments", "shipping"):
        with read_only(data / f"{component}.db") as conn:
            events += [json.loads(row[0]) for row in conn.execute("SELECT event FROM outbox")]
    return events


def dead_letter_events(data: Path) -> list[dict[str, Any]]:
    with read_only(data / "operations.db") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT event FROM dead_letters")]


@pytest.mark.parametrize("component", RELEASED)
def test_the_first_revision_makes_exactly_the_tables_0_1_0_made(
    component: str, tmp_path: Path
) -> None:
    engine = database.open_unchecked(component, replace(get_settings(), data_dir=tmp_path))
    try:
        migrate.upgrade(engine, component, metadata_of(component), to="0001")
    finally:
        engine.dispose()

    made = schema_of(tmp_path / f"{component}.db")

    assert made == schema_of(BUILDS["embedded"] / "data" / f"{component}.db")


def schema_of(path: Path) -> set[tuple[str, str, str]]:
    """Every table and index of an SQLite file as (kind, name, CREATE statement)."""
    with read_only(path) as conn:
        query = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name != 'alembic_version'"
        rows = conn.execute(query)
        return {(kind, name, sql or "") for kind, name, sql in rows}
