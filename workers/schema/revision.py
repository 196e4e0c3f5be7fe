"""Which schema revision a component's code needs, and which one its database is at.

Read without Alembic: every process checks its databases at start, and importing Alembic would
cost each worker about 12 MB (measured on this project's workers). The history of a component is
linear and its files are numbered (``versions/operations/0002_one_dead_letter_….py`` holds
revision ``0002``), so the head is the highest number; a test checks that Alembic agrees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

VERSIONS = Path(__file__).with_name("versions")
VERSION_TABLE = "alembic_version"
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
UPGRADE_COMMAND = "shoeshop db upgrade"


class SchemaError(Exception):
    """A database's schema is not one this code can run against or migrate; the message says
    which database and what to do."""


class DatabaseUnreadable(SchemaError):
    """A component's database could not be opened or read (server down, no such database, not
    an SQLite file, a version table that holds more than one revision)."""

    def __init__(self, component: str, reason: str) -> None:
        self.component = component
        super().__init__(f"the {component} database cannot be read: {reason}")


class MigrationFailed(SchemaError):
    """A migration step failed; it ran in one transaction, so nothing of it was kept."""

    def __init__(self, component: str, revision: str, reason: str) -> None:
        self.component = component
        super().__init__(
            f"migrating the {component} database from revision {revision} failed, and nothing "
            f"of that step was kept: {reason}"
        )


class SchemaNotCurrent(SchemaError):
    """A database is not at the revision its code needs; the message names the component, both
    revisions and the command to run. Not retried: no process should run against it."""

    def __init__(self, component: str, current: str | None, needed: str) -> None:
        self.component, self.current, self.needed = component, current, needed
        known = current is None or current in known_revisions(component)
        if current is None:
            state = "has no schema revision (new, or made by release 0.1.0)"
        elif known:
            state = f"is at revision {current}"
        else:
            state = f"is at revision {current}, which this code does not know"
        remedy = (
            f"Run `{UPGRADE_COMMAND}`."
            if known
            else "A newer release migrated it: run that release, or restore a backup."
        )
        super().__init__(
            f"the {component} database {state}; this code needs revision {needed}. {remedy}"
        )


def known_revisions(component: str, versions: Path = VERSIONS) -> list[str]:
    """The component's revisions, oldest first, e.g. ``["0001", "0002"]``."""
    folder = versions / component
    numbers = [m.group(1) for p in folder.iterdir() if (m := _REVISION_FILE.match(p.name))]
    if not numbers:
        raise LookupError(f"no schema revisions under {folder}")
    return sorted(numbers)


def head_revision(component: str, versions: Path = VERSIONS) -> str:
    """The revision the current code of ``component`` needs."""
    return known_revisions(component, versions)[-1]


def schema_of(conn: Connection, component: str) -> str | None:
    """Where ``component``'s tables are on this connection: its schema on PostgreSQL (named
    outright: a session's search_path is not relied on, see workers.messaging.database), None
    on SQLite (its own file)."""
    return component if conn.dialect.name == "postgresql" else None


def current_revision(conn: Connection, component: str) -> str | None:
    """The revision recorded in this connection's database (its schema on PostgreSQL), or None
    when it has no version table.

    Raises DatabaseUnreadable when the version table holds no revision or more than one (a
    history of this project is linear, and Alembic writes exactly one row: someone edited it).
    """
    schema = schema_of(conn, component)
    if not inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    versions = table(VERSION_TABLE, column("version_num"), schema=schema)
    found = list(conn.execute(select(versions.c.version_num)).scalars())
    if len(found) != 1:
        holds = f"{len(found)} revisions {found}" if found else "no revision"
        raise DatabaseUnreadable(component, f"its {VERSION_TABLE} table holds {holds}, not one")
    return str(found[0])


@dataclass(frozen=True)
class Status:
    """One line of ``shoeshop db current``: where a component's database is and what it needs."""

    component: str
    current: str | None
    head: str
    has_tables: bool = True

    @property
    def state(self) -> str:
        """``current``; ``behind``, ``unversioned`` (tables but no revision: made by release
        0.1.0) or ``empty`` (run ``shoeshop db upgrade``); ``unknown`` (a revision this code does
        not know: a newer release migrated it)."""
        if self.current == self.head:
            return "current"
        if self.current is None:
            return "unversioned" if self.has_tables else "empty"
        return "behind" if self.current in known_revisions(self.component) else "unknown"

    @property
    def revision(self) -> str:
        """The revision for people to read: ``0.1.0`` for an unversioned database."""
        if self.current is not None:
            return self.current
        return "0.1.0" if self.has_tables else "-"


def read_status(engine: Engine, component: str) -> Status:
    """Raises DatabaseUnreadable when the database cannot be opened or read."""
    try:
        with engine.connect() as conn:
            current = current_revision(conn, component)
            has_tables = bool(inspect(conn).get_table_names(schema=schema_of(conn, component)))
    except SQLAlchemyError as exc:
        raise DatabaseUnreadable(component, first_line(exc)) from None
    return Status(component, current, head_revision(component), has_tables)


def first_line(exc: BaseException) -> str:
    """What a database driver said, without SQLAlchemy's statement and background link."""
    reason = getattr(exc, "orig", None) or exc
    return str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__


def require_current(conn: Connection, component: str) -> None:
    """Raise SchemaNotCurrent unless the database is at the head revision of ``component``."""
    current, needed = current_revision(conn, component), head_revision(component)
    if current != needed:
        raise SchemaNotCurrent(component, current, needed)
