"""A SQLite file made before incremental auto-vacuum is switched once by `shoeshop db upgrade`,
so the pages the relay's pruning frees can go back to the disk (a real file, no mock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from workers.db_cli import INCREMENTAL, sqlite_incremental_vacuum


def test_an_older_file_is_switched_to_incremental_auto_vacuum_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # as release 0.1.0 made its files
        old.execute("CREATE TABLE outbox (id TEXT)")
        old.execute("INSERT INTO outbox VALUES ('kept')")
    engine = create_engine(f"sqlite:///{path}")
    try:
        sqlite_incremental_vacuum(engine)
        sqlite_incremental_vacuum(engine)  # a second upgrade finds it done
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == INCREMENTAL
            assert conn.exec_driver_sql("SELECT id FROM outbox").scalars().all() == ["kept"]
    finally:
        engine.dispose()
