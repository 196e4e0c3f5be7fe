"""Bringing a component's database to the revision its code needs, with Alembic.

Imported by the ``shoeshop db`` commands and by tests only: a running worker checks its schema
with workers.schema.revision, which does not load Alembic.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, create_engine, text

from workers.messaging.database import begin_write
from workers.schema.revision import VERSIONS, head_revision

HERE = Path(__file__).parent


def alembic_config(
    component: str, conn: Connection, metadata: list[MetaData], versions: Path = VERSIONS
) -> Config:
    """An Alembic configuration for one component's history, bound to an open connection."""
    config = history_config(component, versions)
    config.attributes.update(connection=conn, component=component, target_metadata=metadata)
    return config


def history_config(component: str, versions: Path = VERSIONS) -> Config:
    """Alembic's view of one component's history (``workers/schema/versions/<component>``)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("version_locations", str(versions / component))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine, component: str, metadata: list[MetaData], to: str = "head") -> None:
    """Migrate ``component``'s database (its SQLite file, or its PostgreSQL schema) to ``to``.

    A database that release 0.1.0 made (its tables, no version table) is adopted by the first
    revision, which creates only the tables that are missing. Safe when several processes
    upgrade at once: on PostgreSQL they queue on an advisory lock, on SQLite on the write lock.
    """
    with _migration_connection(engine, component) as conn:
        command.upgrade(alembic_config(component, conn, metadata), to)


def new_revision(
    component: str, message: str, metadata: list[MetaData], versions: Path = VERSIONS
) -> Path:
    """Write the next numbered revision of ``component``: what the models have that its head
    lacks, as Alembic's autogenerate finds it on a scratch SQLite database (batch mode, so the
    same file runs on SQLite and PostgreSQL). Read and edit it before committing: a rename looks
    like a drop and an add, and data moves are never guessed. Returns the file's path."""
    number = f"{int(head_revision(component, versions)) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/{component}.db")
        try:
            with engine.begin() as conn:
                config = alembic_config(component, conn, metadata, versions)
                command.upgrade(config, "head")
                command.revision(config, message=message, autogenerate=True, rev_id=number)
        finally:
            engine.dispose()
    return next((versions / component).glob(f"{number}_*.py"))


@contextmanager
def _migration_connection(engine: Engine, component: str) -> Iterator[Connection]:
    with begin_write(engine) as conn:
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(f"shoeshop:{component}".encode())
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{component}"'))
            # Alembic's ALTER statements name their table without a schema, which the engine's
            # schema_translate_map does not reach: for this transaction only (SET LOCAL, which
            # a pooler in transaction mode keeps), unnamed tables are the component's.
            conn.execute(text(f'SET LOCAL search_path TO "{component}"'))
        yield conn
