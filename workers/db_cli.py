"""``shoeshop db``: bring each component's database to its code's revision, or show where it is."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from config.settings import COMPONENTS, get_settings
from workers.messaging import database
from workers.schema.revision import (
    UPGRADE_COMMAND,
    DatabaseUnreadable,
    MigrationFailed,
    SchemaError,
    SchemaNotCurrent,
    Status,
    first_line,
    head_revision,
    read_status,
)
from workers.schema.tables import metadata_of

# PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental.
INCREMENTAL = 2


def sqlite_incremental_vacuum(engine: Engine) -> None:
    """A SQLite file made before its connections asked for incremental auto-vacuum (0.1.0's, or
    any made before this release) is switched once, with a VACUUM that rewrites it; then the
    pages the relay's pruning frees go back to the disk. Nothing on PostgreSQL, or once done."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == INCREMENTAL:
            return
        conn.commit()  # VACUUM runs outside any transaction
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA auto_vacuum=INCREMENTAL")
        raw.execute("VACUUM")


def upgrade_all(components: tuple[str, ...] = COMPONENTS) -> list[str]:
    """Migrate each component's database to the head revision (creating it if new); returns one
    line per component, e.g. ``orders: 0001 -> 0002``.

    Raises SchemaNotCurrent, before any database is touched, when one of them is at a revision
    this code does not know (a newer release migrated it).
    """
    # Alembic tells of every plugin and step at INFO; the lines returned here say what changed.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from workers.schema import migrate

    before = statuses(components)
    for status in before:
        if status.state == "unknown":
            raise SchemaNotCurrent(status.component, status.current, status.head)
    for status in before:
        with opened(status.component) as engine:
            try:
                migrate.upgrade(engine, status.component, metadata_of(status.component))
            except (SQLAlchemyError, SchemaError) as exc:  # a 0.1.0 table with other columns
                raise MigrationFailed(status.component, status.revision, first_line(exc)) from None
            sqlite_incremental_vacuum(engine)
    return [
        f"{old.component}: {'new' if old.state == 'empty' else old.revision} -> {new.revision}"
        for old, new in zip(before, statuses(components), strict=True)
    ]


def statuses(components: tuple[str, ...] = COMPONENTS) -> list[Status]:
    """Where each component's database is. Reads only: an SQLite file that is not there is
    reported empty, not created.

    Raises DatabaseUnreadable for a database that cannot be opened or read.
    """
    settings = get_settings()
    found = []
    for component in components:
        if settings.database_url is None and not sqlite_file(component).exists():
            found.append(Status(component, None, head_revision(component), has_tables=False))
            continue
        with opened(component) as engine:
            found.append(read_status(engine, component))
    return found


def sqlite_file(component: str) -> Path:
    return get_settings().data_dir / f"{component}.db"


@contextmanager
def opened(component: str) -> Iterator[Engine]:
    """A component's engine for the migrations; DatabaseUnreadable when it cannot be made."""
    try:
        engine = database.open_unchecked(component, get_settings())
    except OSError as exc:  # the data directory cannot be made
        raise DatabaseUnreadable(component, str(exc)) from None
    try:
        yield engine
    finally:
        engine.dispose()


def where() -> str:
    """Where the databases are, for people: the PostgreSQL URL without its password, or the
    SQLite files' directory."""
    settings = get_settings()
    if settings.database_url is None:
        return f"SQLite files under {settings.data_dir.resolve()}"
    return f"PostgreSQL {make_url(settings.database_url).render_as_string(hide_password=True)}"


@click.group()
def db() -> None:
    """Each component's database schema (Alembic migrations, one history per component)."""


@db.command()
@click.option(
    "--component",
    "components",
    multiple=True,
    type=click.Choice(COMPONENTS),
    help="Only this component (repeatable); every component by default.",
)
def upgrade(components: tuple[str, ...]) -> None:
    """Bring every component's database to the revision this code needs; create new ones."""
    for line in upgrade_all(components or COMPONENTS):
        click.echo(line)


@db.command()
@click.argument("component", type=click.Choice(COMPONENTS))
@click.argument("message")
def revision(component: str, message: str) -> None:
    """Write the next migration of COMPONENT from its models (for developers; review it)."""
    from workers.schema import migrate

    path = migrate.new_revision(component, message, metadata_of(component))
    click.echo(f"wrote {path}: read it, fix what autogenerate cannot know, commit it")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per component.")
def current(as_json: bool) -> None:
    """Show each component's revision, the one this code needs, and whether it is behind.

    Exits with status 1 when any database is not current, so a deployment can check first.
    """
    found = statuses()
    if as_json:
        for status in found:
            click.echo(
                json.dumps(
                    {
                        "component": status.component,
                        "revision": status.current,
                        "head": status.head,
                        "state": status.state,
                    }
                )
            )
    else:
        click.echo(where())
        width = max(len(name) for name in ("component", *COMPONENTS)) + 2
        click.echo(f"{'component':<{width}}{'revision':<10}{'head':<8}state")
        for status in found:
            needs = status.state in ("behind", "empty", "unversioned")
            hint = f" (run `{UPGRADE_COMMAND}`)" if needs else ""
            click.echo(
                f"{status.component:<{width}}{status.revision:<10}{status.head:<8}"
                f"{status.state}{hint}"
            )
    if any(status.state != "current" for status in found):
        raise SystemExit(1)
