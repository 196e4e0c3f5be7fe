"""Schemas change only through migrations: built from empty they equal the models, a 0.1.0
duplicate is merged on the way up, and no process starts against a database behind its code."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    insert,
    inspect,
    select,
    text,
)

from config.settings import COMPONENTS, Settings, get_settings
from shop.readmodel import email_key
from shop.tables import orders
from tests.support import stack as stacks
from tests.support.integration import on_component_schema
from tests.support.processes import free_port
from tests.support.shop import db_current
from workers.messaging import database
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.tables import dead_letter_actions, dead_letters
from workers.schema import migrate
from workers.schema.revision import head_revision, read_status
from workers.schema.tables import metadata_of

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture()
def scratch(tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at empty databases of the stack under test: SQLite files in a fresh
    directory, or a fresh PostgreSQL database (one schema per component) on the services stack."""
    settings = get_settings()
    if settings.database_url is None:
        yield dataclasses.replace(settings, data_dir=tmp_path)
        return
    name = f"shoeshop_scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stacks.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = settings.database_url.rsplit("/", 1)[0] + f"/{name}"
        yield dataclasses.replace(settings, data_dir=tmp_path, database_url=url)
    finally:
        with psycopg.connect(stacks.POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def opened(settings: Settings, component: str) -> Engine:
    return database.open_unchecked(component, settings)


@pytest.mark.parametrize("component", COMPONENTS)
def test_a_database_migrated_from_empty_equals_the_models(
    scratch: Settings, component: str
) -> None:
    engine = opened(scratch, component)
    try:
        migrate.upgrade(engine, component, metadata_of(component))
        with engine.connect() as conn:
            on_component_schema(conn, component)
            drift = differences(conn, metadata_of(component))
            assert read_status(engine, component).state == "current"
    finally:
        engine.dispose()
    assert drift == [], f"{component}: the models and the migrations differ: {drift}"


def differences(conn: Connection, models: list[MetaData]) -> list[object]:
    """Alembic's comparison (tables, columns, types, server defaults, indexes, unique and
    foreign keys) plus what it leaves out: CHECK constraints, by name and condition."""
    opts = {"compare_type": True, "compare_server_default": True}
    found: list[object] = list(
        compare_metadata(MigrationContext.configure(conn, opts=opts), models)
    )
    inspector = inspect(conn)
    for table in (table for metadata in models for table in metadata.sorted_tables):
        if not inspector.has_table(table.name):
            continue  # a missing table is in Alembic's comparison already
        declared = {
            (check.name, condition(str(check.sqltext)))
            for check in table.constraints
            if isinstance(check, CheckConstraint)
        }
        made = {
            (check["name"], condition(check["sqltext"]))
            for check in inspector.get_check_constraints(table.name)
        }
        if declared != made:
            found.append(("check constraints", table.name, sorted(declared), sorted(made)))
    return found


def condition(sql: str) -> str:
    """A CHECK condition without the spaces and brackets PostgreSQL adds when it stores one."""
    return "".join(sql.replace("(", " ").replace(")", " ").split()).lower()


def test_an_older_revision_is_told_apart_from_the_models(scratch: Settings) -> None:
    # The comparison above can fail: operations at 0001 lacks 0002's unique index.
    engine = opened(scratch, "operations")
    try:
        migrate.upgrade(engine, "operations", metadata_of("operations"), to="0001")
        with engine.connect() as conn:
            on_component_schema(conn, "operations")
            drift = differences(conn, metadata_of("operations"))
        assert read_status(engine, "operations").state == "behind"
    finally:
        engine.dispose()
    assert any("ux_dead_letters_event_task" in str(change) for change in drift), drift


def test_dead_letters_that_0_1_0_duplicated_are_merged_by_the_upgrade(scratch: Settings) -> None:
    engine = opened(scratch, "operations")
    event_id, first = str(uuid.uuid4()), utcnow() - timedelta(minutes=5)
    rows = [
        letter_row(event_id, attempts=3, failed_at=first, message="first"),
        letter_row(event_id, attempts=2, failed_at=first + timedelta(minutes=1), message="last"),
        letter_row(str(uuid.uuid4()), attempts=1, failed_at=first, message="another event"),
    ]
    try:
        migrate.upgrade(engine, "operations", metadata_of("operations"), to="0001")
        with database.begin_write(engine) as conn:
            conn.execute(insert(dead_letters), rows)
            conn.execute(
                insert(dead_letter_actions),
                {"dead_letter_id": rows[1]["id"], "action": "replay", "at": first, "outcome": "ok"},
            )
        migrate.upgrade(engine, "operations", metadata_of("operations"))
        with engine.connect() as conn:
            letters = conn.execute(select(dead_letters).order_by(dead_letters.c.attempts)).all()
            actions = conn.execute(select(dead_letter_actions.c.dead_letter_id)).scalars().all()
    finally:
        engine.dispose()
    assert [(row.message, row.attempts) for row in letters] == [("another event", 1), ("last", 5)]
    merged = letters[1]
    assert merged.id == rows[0]["id"], "the earliest row keeps its id"
    assert as_utc(merged.first_failed_at) == first
    assert actions == [rows[0]["id"]], "the operators' actions follow the merged row"


def test_the_orders_already_there_are_found_by_their_customers_email_after_0007(
    scratch: Settings,
) -> None:
    # 0007 fills orders.email_key for the orders placed before it, as the read model writes it
    # for new ones (readmodel.email_key), in batches: more orders than one batch.
    engine = opened(scratch, "shop")
    emails = [f" Zoë.{n}@Example.COM " for n in range(BATCH_0007 + 5)]
    now = utcnow()
    try:
        migrate.upgrade(engine, "shop", metadata_of("shop"), to="0006")
        with database.begin_write(engine) as conn:
            conn.execute(insert(ORDERS_AT_0006), [order_row(email, now) for email in emails])
        migrate.upgrade(engine, "shop", metadata_of("shop"))
        with engine.connect() as conn:
            keys = conn.execute(select(orders.c.email_key).order_by(orders.c.id)).scalars().all()
    finally:
        engine.dispose()
    assert sorted(keys) == sorted(email_key(email) for email in emails)
    assert email_key(emails[0]) == "zoë.0@example.com"


BATCH_0007 = 1000  # the migration's batch
ORDERS_AT_0006 = Table(
    "orders",
    MetaData(),
    *(Column(column.name, column.type) for column in orders.columns if column.name != "email_key"),
)


def order_row(email: str, at: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "status": "SHIPPED",
        "customer": {"name": "Zoë", "email": email},
        "shipping_address": {
            "line1": "1 Lane",
            "city": "Town",
            "postal_code": "1",
            "country": "NL",
        },
        "items": [],
        "total_cents": 100,
        "currency": "EUR",
        "card_brand": "visa",
        "card_last4": "4242",
        "stock_state": "sold",
        "created_at": at,
        "updated_at": at,
    }


def letter_row(
    event_id: str, *, attempts: int, failed_at: object, message: str
) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "event_id": event_id,
        "subject": str(uuid.uuid4()),
        "task": "payments.on_payment_requested",
        "queue": "payments",
        "event": {"id": event_id},
        "raw": None,
        "exception": "GatewayUnavailable",
        "message": message,
        "traceback": "Traceback ...",
        "attempts": attempts,
        "first_failed_at": failed_at,
        "last_failed_at": failed_at,
        "status": "parked",
    }


def env_for(settings: Settings) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    env["SHOESHOP_DATA_DIR"] = str(settings.data_dir)
    env["SHOESHOP_BROKER_URL"] = os.environ["SHOESHOP_BROKER_URL"]
    if settings.database_url:
        env["SHOESHOP_DATABASE_URL"] = settings.database_url
    return env


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture()
def behind(scratch: Settings) -> dict[str, str]:
    """Every database current but operations, left at its first revision."""
    for component in COMPONENTS:
        engine = opened(scratch, component)
        try:
            to = "0001" if component == "operations" else "head"
            migrate.upgrade(engine, component, metadata_of(component), to=to)
        finally:
            engine.dispose()
    return env_for(scratch)


def by_hand(settings: Settings, component: str, statement: str) -> None:
    """What an operator's hand, or a newer release, does to a version table."""
    engine = opened(settings, component)
    try:
        with database.begin_write(engine) as conn:
            on_component_schema(conn, component)
            conn.execute(text(statement))
    finally:
        engine.dispose()


STARTS = {
    "worker": [
        *(str(BIN / "celery"), "-A", "config.celery_process", "worker", "-Q", "payments"),
        *("-n", "payments-behind@%h", "--pool", "threads", "-c", "1"),
    ],
    "relay": [str(BIN / "shoeshop"), "relay"],
    # The Procfile's web line, on a port of its own.
    "web": [
        *(str(BIN / "gunicorn"), "--config", "python:shop.web.gunicorn_conf", "--workers", "2"),
        *("--bind", f"127.0.0.1:{free_port()}", "shop.web.app:create_app()"),
    ],
    "web app": [sys.executable, "-c", "from shop import create_app; create_app()"],
}


@pytest.mark.parametrize("process", list(STARTS))
def test_a_process_refuses_to_start_against_a_database_behind_its_code(
    behind: dict[str, str], process: str
) -> None:
    started = run(STARTS[process], behind)
    output = started.stdout + started.stderr
    assert started.returncode != 0, output
    assert "the operations database is at revision 0001" in output, output
    assert f"needs revision {head_revision('operations')}" in output
    assert "shoeshop db upgrade" in output
    if process != "web app":
        assert "Traceback" not in output and output.count("refusing to start") == 1, output


@pytest.mark.parametrize(
    ("edit", "holds"),
    [
        ("INSERT INTO alembic_version VALUES ('0000')", "2 revisions"),
        ("DELETE FROM alembic_version", "no revision"),
    ],
)
def test_a_worker_refuses_a_database_whose_version_table_was_edited_by_hand(
    behind: dict[str, str], scratch: Settings, edit: str, holds: str
) -> None:
    by_hand(scratch, "payments", edit)

    started = run(STARTS["worker"], behind)
    shown = run([str(BIN / "shoeshop"), "db", "current"], behind)

    assert started.returncode != 0
    refusal = f"the payments database cannot be read: its alembic_version table holds {holds}"
    assert f"refusing to start: {refusal}" in started.stderr, started.stderr
    assert shown.returncode == 1 and refusal in shown.stderr, shown.stderr


def test_db_current_shows_who_is_behind_and_upgrade_brings_it_forward(
    behind: dict[str, str],
) -> None:
    before = run([str(BIN / "shoeshop"), "db", "current"], behind)
    assert before.returncode == 1
    rows = db_current(before.stdout)
    assert rows["operations"][:3] == ["0001", head_revision("operations"), "behind"]
    assert "shoeshop db upgrade" in " ".join(rows["operations"])
    assert all(rows[c][2] == "current" for c in COMPONENTS if c != "operations")

    assert run([str(BIN / "shoeshop"), "db", "upgrade"], behind).returncode == 0

    after = run([str(BIN / "shoeshop"), "db", "current"], behind)
    assert after.returncode == 0, after.stdout
    assert run(STARTS["web app"], behind).returncode == 0


def test_db_current_on_a_directory_with_no_shop_creates_nothing(tmp_path: Path) -> None:
    if get_settings().database_url is not None:
        pytest.skip("SQLite files only")
    env = env_for(dataclasses.replace(get_settings(), data_dir=tmp_path / "typo"))

    shown = run([str(BIN / "shoeshop"), "db", "current"], env)

    assert shown.returncode == 1
    assert all(row[2] == "empty" for row in db_current(shown.stdout).values())
    assert f"SQLite files under {tmp_path / 'typo'}" in shown.stdout
    assert not (tmp_path / "typo").exists()


def test_an_upgrade_refuses_a_database_a_newer_release_migrated_and_touches_none(
    behind: dict[str, str], scratch: Settings
) -> None:
    by_hand(scratch, "orders", "UPDATE alembic_version SET version_num = '9999'")

    refused = run([str(BIN / "shoeshop"), "db", "upgrade"], behind)

    assert refused.returncode == 1
    assert "the orders database is at revision 9999, which this code does not know" in (
        refused.stderr
    )
    operations = opened(scratch, "operations")
    try:
        assert read_status(operations, "operations").current == "0001", "nothing was migrated"
    finally:
        operations.dispose()
