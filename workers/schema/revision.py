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

from sqlalchemy import Connection, Engine, inspect, text

VERSIONS = Path(__file__).with_name("versions")
VERSION_TABLE = "alembic_version"
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
UPGRADE_COMMAND = "shoeshop db upgrade"


class SchemaError(Exception):
    """A database's schema is not one this code can run against or migrate; the message says
    which database and what to do."""


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


def known_revisions(component: str) -> list[str]:
    """The component's revisions, oldest first, e.g. ``["0001", "0002"]``."""
    folder = VERSIONS / component
    numbers = [m.group(1) for p in folder.iterdir() if (m := _REVISION_FILE.match(p.name))]
    if not numbers:
        raise LookupError(f"no schema revisions under {folder}")
    return sorted(numbers)


def head_revision(component: str) -> str:
    """The revision the current code of ``component`` needs."""
    return known_revisions(component)[-1]


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in this connection's database (its schema on PostgreSQL), or None
    when it has no version table."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()


@dataclass(frozen=True)
class Status:
    """One line of ``shoeshop db current``: where a component's database is and what it needs."""

    component: str
    current: str | None
    head: str

    @property
    def state(self) -> str:
        """``current``; ``behind`` or ``empty`` (run ``shoeshop db upgrade``); ``unknown`` (a
        revision this code does not know: a newer release migrated it)."""
        if self.current == self.head:
            return "current"
        if self.current is None:
            return "empty"
        return "behind" if self.current in known_revisions(self.component) else "unknown"


def read_status(engine: Engine, component: str) -> Status:
    with engine.connect() as conn:
        return Status(component, current_revision(conn), head_revision(component))


def require_current(conn: Connection, component: str) -> None:
    """Raise SchemaNotCurrent unless the database is at the head revision of ``component``."""
    current, needed = current_revision(conn), head_revision(component)
    if current != needed:
        raise SchemaNotCurrent(component, current, needed)
