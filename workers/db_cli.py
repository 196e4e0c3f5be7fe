"""``shoeshop db``: bring each component's database to its code's revision, or show where it is."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from config.settings import COMPONENTS, get_settings
from workers.messaging import database
from workers.schema.revision import UPGRADE_COMMAND, SchemaNotCurrent, Status, read_status

# The modules that declare each component's tables (workers.messaging.database.register); the
# kit's outbox, inbox and dead letters need no import.
SCHEMA_MODULES = (
    "shop.tables",
    "workers.orders.store",
    "workers.orders.projections",
    "workers.payments.store",
    "workers.shipping.store",
)


def declare_schemas() -> None:
    """Import every module that declares tables, so each component's metadata is complete."""
    for module in SCHEMA_MODULES:
        importlib.import_module(module)


def upgrade_all(components: tuple[str, ...] = COMPONENTS) -> list[str]:
    """Migrate each component's database to the head revision (creating it if new); returns one
    line per component, e.g. ``orders: 0001 -> 0002``.

    Raises SchemaNotCurrent, before any database is touched, when one of them is at a revision
    this code does not know (a newer release migrated it).
    """
    # Alembic announces each plugin it loads at INFO; the revisions applied are worth keeping.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    from workers.schema import migrate

    declare_schemas()
    before = statuses(components)
    for status in before:
        if status.state == "unknown":
            raise SchemaNotCurrent(status.component, status.current, status.head)
    for component in components:
        with opened(component) as engine:
            migrate.upgrade(engine, component, database.metadata_of(component))
    return [
        f"{old.component}: {old.current or 'empty'} -> {new.current}"
        for old, new in zip(before, statuses(components), strict=True)
    ]


def statuses(components: tuple[str, ...] = COMPONENTS) -> list[Status]:
    """Where each component's database is, read without opening it for work."""
    found = []
    for component in components:
        with opened(component) as engine:
            found.append(read_status(engine, component))
    return found


@contextmanager
def opened(component: str) -> Iterator[Engine]:
    engine = database.open_unchecked(component, get_settings())
    try:
        yield engine
    finally:
        engine.dispose()


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

    declare_schemas()
    path = migrate.new_revision(component, message, database.metadata_of(component))
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
        click.echo(f"{'component':<12}{'revision':<10}{'head':<8}state")
        for status in found:
            hint = f" (run `{UPGRADE_COMMAND}`)" if status.state in ("behind", "empty") else ""
            click.echo(
                f"{status.component:<12}{status.current or '-':<10}{status.head:<8}"
                f"{status.state}{hint}"
            )
    if any(status.state != "current" for status in found):
        raise SystemExit(1)
