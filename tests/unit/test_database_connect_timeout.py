"""A PostgreSQL server that accepts and never answers fails a connection in bounded time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from config.settings import Settings
from workers.messaging.database import CONNECT_TIMEOUT_S, _open_engine


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that takes connections and never says a word (a hung server or pooler)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_fails_the_connection_after_the_timeout(
    silent_port: int,
) -> None:
    url = f"postgresql://shop@127.0.0.1:{silent_port}/shoeshop"
    engine = _open_engine("shop", Settings.from_env({"SHOESHOP_DATABASE_URL": url}))
    started = time.monotonic()
    with (
        pytest.raises(sqlalchemy.exc.OperationalError, match="timeout"),
        engine.connect() as conn,
    ):
        conn.execute(text("SELECT 1"))
    assert time.monotonic() - started < CONNECT_TIMEOUT_S + 5
    engine.dispose()
