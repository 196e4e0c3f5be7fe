"""What both sides of the 0.1.0 fixture build share: names, errors, output, tools, SQLite reads.

The parent (build.py, capture.py, verify.py) runs under the current code; the child (child.py,
scenario.py, harness.py) inside the 0.1.0 worktree. Both import this module, so it imports only
the standard library. The modules here import each other relatively: this folder is the package
``tests.upgrade.v0_1_0`` in the parent and ``v0_1_0`` in the child (see build.child_env).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

TAG = "v0.1.0"
BUILDS = ("embedded", "rabbitmq")
QUEUES = ("shop", "orders", "payments", "shipping")
# The components 0.1.0 had, each with a database (notifications came after it).
COMPONENTS = ("shop", "orders", "payments", "shipping", "operations")
# Orders whose order.placed is left waiting on the orders queue.
WAITING = 3
RABBITMQ_HOST = "127.0.0.1:5672"


class BuildError(RuntimeError):
    """The fixture could not be built as intended; the message says what and shows the logs."""


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def environ_without_settings() -> dict[str, str]:
    """This process's environment without any SHOESHOP_ setting: the build sets those it means."""
    return {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}


def rows(database: Path, sql: str, *params: Any) -> list[Any]:
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def run(*command: str, cwd: Path | None = None) -> str:
    """A command line tool's output; a BuildError with what it wrote on stderr if it fails."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


# --- RabbitMQ, through rabbitmqctl ----------------------------------------------------------


def rabbitmqctl(*args: str) -> str:
    return run("rabbitmqctl", "-q", *args)


def rabbitmq_list(command: str, vhost: str, columns: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        rabbitmqctl(command, "-p", vhost, *columns.split(), "--formatter", "json")
    )
    for row in found:
        if "arguments" in row:  # rabbitmqctl gives [name, AMQP type, value] triples
            row["arguments"] = {name: value for name, _type, value in row["arguments"]}
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True))


def transient(name: str) -> bool:
    """Celery's control and event queues and exchanges, and RabbitMQ's own exchanges."""
    return "pidbox" in name or name.startswith(("celeryev", "amq."))
