"""One writer at a time in the archive directory (SHOESHOP_ARCHIVE_DIR).

The relay appends pruned rows to the day's archive files (``retention``); an erasure reads every
outbox archive, rewrites it and swaps the new file in (``erasure``). Were a batch appended
between the erasure's read and its swap, the swap would throw it away, after the relay had
already deleted those rows from the database: lost. Both take an exclusive ``flock`` on one lock
file of the directory around their work, so each sees the other's whole change. An advisory lock
of the operating system: it is released when its holder exits, however it exits, so a killed
relay never leaves the directory locked. The archive directory is a local one (the relay's host);
a network file system without working ``flock`` is not supported.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, select

from workers.messaging.database import engine_for, transaction, upsert_insert
from workers.messaging.envelope import utcnow
from workers.messaging.tables import archive_dirs

LOCK_FILE = ".archive.lock"

_recorded: set[Path] = set()


@contextmanager
def locked(archive_dir: Path) -> Iterator[None]:
    """Hold the archive directory's lock (waiting for it) while the block runs. Raises OSError
    when the directory cannot be made or the lock file opened."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    with (archive_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record(archive_dir: Path, operations: Connection | None = None) -> None:
    """Note in operations' database (``archive_dirs``) that the relay archives into
    ``archive_dir`` (an absolute path), once per process; on ``operations`` (a connection to
    that database in a transaction) when given, else in a transaction of its own. Raises
    sqlalchemy.exc.SQLAlchemyError when the database is away (noted on the next call then)."""
    if archive_dir in _recorded:
        return
    if operations is not None:
        _note(operations, archive_dir)  # the caller's transaction may yet roll back: not cached
        return
    with transaction("operations") as conn:
        _note(conn, archive_dir)
    _recorded.add(archive_dir)


def _note(conn: Connection, archive_dir: Path) -> None:
    stmt = upsert_insert(conn, archive_dirs).on_conflict_do_nothing(
        index_elements=[archive_dirs.c.path]
    )
    conn.execute(stmt, {"path": str(archive_dir), "first_used_at": utcnow()})


def recorded() -> list[Path]:
    """Every archive directory the relay has noted (``record``), in the order of their paths.
    Raises sqlalchemy.exc.SQLAlchemyError when operations' database is away."""
    with engine_for("operations").connect() as conn:
        return [Path(path) for path in conn.execute(select(archive_dirs.c.path)).scalars()]
