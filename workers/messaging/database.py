"""Each component's own database: an SQLite file under the data dir, or a PostgreSQL schema."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from config.settings import Settings, get_settings
from workers.messaging import tracing
from workers.messaging.errors import TransientError
from workers.schema.revision import require_current

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert


class DatabaseBusy(TransientError):
    """Another thread of this process held the SQLite file's write turn for too long."""


# SQLite waits this long for another process's write lock before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000
# One per worker thread (the Procfile's widest worker runs 8) plus the web's readers.
SQLITE_POOL_SIZE = 8
SQLITE_CACHE_KIB = 512

# Marks a connection's transaction as a write (see _sqlite_engine); ignored by PostgreSQL.
_WRITE_OPTION = "shoeshop_write"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# One writer lock per SQLite file, for the threads of this process (see `_write_turn`).
_sqlite_writers: dict[str, threading.RLock] = {}


def engine_for(component: str, settings: Settings | None = None) -> Engine:
    """The component's engine, opened the first time it is asked for.

    Raises workers.schema.revision.SchemaNotCurrent (naming the component and the command to
    run) when the database is not at the revision this code needs: tables are made and changed
    only by ``shoeshop db upgrade``, never on the fly.
    """
    with _lock:
        engine = _engines.get(component)
        if engine is None:
            engine = _create_engine(component, settings or get_settings())
            try:
                with engine.connect() as conn:
                    require_current(conn, component)
            except BaseException:
                engine.dispose()
                raise
            _engines[component] = engine
        return engine


def open_unchecked(component: str, settings: Settings | None = None) -> Engine:
    """A new engine on the component's database, not checked against the code's revision:
    for the migrations themselves and ``shoeshop db current``. Dispose of it when done."""
    return _create_engine(component, settings or get_settings())


@contextmanager
def transaction(component: str) -> Iterator[Connection]:
    """A write transaction on the component's database: commits on success, else rolls back.

    Use this for every write; ``engine_for(component).connect()`` is for reads.
    """
    with begin_write(engine_for(component)) as conn:
        yield conn


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A write transaction on any engine of ours; on SQLite it takes the write lock up front."""
    with _write_turn(engine), engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
        yield conn


@contextmanager
def _write_turn(engine: Engine) -> Iterator[None]:
    """SQLite takes one writer at a time. Threads of one process queue for it on a lock, and
    the next one starts the moment the last commits; left to SQLite, a thread that finds the
    database locked sleeps 1, 2, 5, 10… ms between tries, idle while the lock may be free (the
    long tail of a busy worker's latency). Other processes still meet SQLite's busy handler.

    The wait is bounded like SQLite's own, so a stuck writer fails the next one (a transient
    error: its task retries) instead of hanging it.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    with _lock:
        turn = _sqlite_writers.setdefault(str(engine.url), threading.RLock())
    if not turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        raise DatabaseBusy(f"{engine.url.database}: no write turn in {SQLITE_BUSY_TIMEOUT_MS} ms")
    try:
        yield
    finally:
        turn.release()


def upsert_insert(conn: Connection, table: Table) -> PostgresInsert | SqliteInsert:
    """An INSERT that can take ON CONFLICT clauses, in the dialect this connection speaks."""
    if conn.dialect.name == "postgresql":
        # Imported here: the PostgreSQL dialect package (it loads every driver's module) costs
        # each process 2 MB that an SQLite deployment does not need.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    return sqlite.insert(table)


def dispose_all() -> None:
    """Close every pooled connection (tests, and before a worker forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def database_url(component: str, settings: Settings) -> str:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{settings.data_dir / f'{component}.db'}"
    url = settings.database_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


# A database error's text (in a log line, a dead letter's message, a traceback) shows its
# statement without the values bound to it: they hold customers' names and addresses, which
# must not land where an erasure cannot reach them or reach them whole.
HIDE_PARAMETERS = True


def _create_engine(component: str, settings: Settings) -> Engine:
    engine = _open_engine(component, settings)
    tracing.instrument_engine(engine)  # nothing while tracing is off
    return engine


def _open_engine(component: str, settings: Settings) -> Engine:
    url = database_url(component, settings)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _postgres_engine(url, component, settings)


def _postgres_engine(url: str, component: str, settings: Settings) -> Engine:
    # Nothing rides on a session that a pooler in transaction mode (PgBouncer) would not keep:
    # no startup `options` (PgBouncer refuses them) and no `SET search_path`. The component's
    # schema is written into each statement instead (schema_translate_map: a table of no
    # schema is the component's); the time zone is the one SET that PgBouncer tracks and gives
    # every server connection it lends this client.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        hide_parameters=HIDE_PARAMETERS,
        connect_args=_postgres_connect_args(url, settings),
    )
    engine.update_execution_options(schema_translate_map={None: component})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # UTC sessions: times come back with a +00:00 offset whatever the server's own zone.
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()

    return engine


# libpq's limit on opening a connection, startup and authentication included, when the URL
# names none: a server (or a pooler) that accepts and never answers fails a request, and
# /readyz, after this long instead of hanging it.
CONNECT_TIMEOUT_S = 5


def _postgres_connect_args(url: str, settings: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if "connect_timeout" not in make_url(url).query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    if not settings.database_prepared_statements:
        # psycopg prepares a statement run five times on a connection; a pooler that lends the
        # next transaction another server connection (PgBouncer before 1.21, or without
        # max_prepared_statements) would not have it.
        args["prepare_threshold"] = None
    return args


def give_back_free_pages(component: str) -> None:
    """SQLite: return the file's free pages to the disk (PRAGMA incremental_vacuum), so the file
    shrinks after rows are deleted; nothing on PostgreSQL, whose autovacuum reuses the space."""
    engine = engine_for(component)
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        # Each step of this pragma frees one page; executescript steps it to the end, which a
        # plain execute (one step) does not. It runs as a write transaction of its own.
        raw.executescript("PRAGMA incremental_vacuum;")


# 4 MiB: a thousand pages, what SQLite's automatic checkpoint lets the log grow to anyway.
SQLITE_WAL_LIMIT_BYTES = 4 * 1024 * 1024


def _sqlite_engine(url: str) -> Engine:
    # A small pool: opening a connection and setting its pragmas costs more than most of our
    # transactions. Engines are created lazily in the process that uses them (after gunicorn's
    # and Celery's forks), so a pooled connection never crosses a fork.
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        connect_args={"check_same_thread": False},
        hide_parameters=HIDE_PARAMETERS,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control so every write transaction can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: the pragmas after it may wait for another connection's lock.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # A new file keeps a map of its free pages, so the pages the relay's pruning frees can
        # be given back to the disk (PRAGMA incremental_vacuum); a file made before is switched
        # by `shoeshop db upgrade` (sqlite_incremental_vacuum). No effect once tables exist.
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        # The write-ahead log is cut back to this size after each checkpoint: a burst of writes
        # (a prune of thousands of rows) does not leave a log that big for as long as any
        # connection stays open.
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and rewritten content is overwritten with zeros, not left in free pages: an
        # erased customer's data must not be readable from the file afterwards (some builds
        # default to it; stated because it matters).
        cursor.execute("PRAGMA secure_delete=ON")
        # Each pooled connection keeps its own page cache (2 MB by default); the operating
        # system caches the file for all of them anyway. Smaller keeps a worker's memory down.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front (IMMEDIATE): two processes never
        # deadlock upgrading a read lock, and a conditional stock decrement is serialised.
        # A read stays deferred, so it neither waits for writers nor holds them up (WAL).
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
