"""Alembic's environment for one component's history; run by workers.schema.migrate, which
hands over the connection, the component and its tables in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, MetaData

config = context.config
connection: Connection = config.attributes["connection"]
component: str = config.attributes["component"]
target_metadata: list[MetaData] = config.attributes["target_metadata"]
postgres = connection.dialect.name == "postgresql"

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    # PostgreSQL: each component's tables and its version table live in its own schema.
    version_table_schema=component if postgres else None,
    # SQLite alters a table by copying it (batch mode); autogenerate writes migrations that way.
    render_as_batch=not postgres,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
