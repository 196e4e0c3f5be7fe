"""The naive shop's processes: the Procfile's web and worker lines on its app, and a gateway."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honcho.environ import parse_procfile
from sqlalchemy import Engine

from config.settings import Settings
from workers.bench import naive_tables
from workers.bench.naive_app import PREFIX, QUEUES
from workers.bench.processes import ProcessGroup, procfile_commands
from workers.bench.stack import (
    PROJECT_ROOT,
    Broker,
    free_port,
    stack_env,
    wait_ready,
)

NAIVE_APP = "workers.bench.naive_app"
NAIVE_WSGI = "'workers.bench.naive_web:create_app()'"
# No order shipped for this long: the rest are lost, not slow.
STALL_S = 60.0
POLL_INTERVAL_S = 0.5


def naive_commands(procfile: str, dev_procfile: str) -> dict[str, str]:
    """The Procfile's web and worker lines on the naive app and its queues, and Procfile.dev's
    gateway simulator: the same program the system charges, in a process of its own."""
    commands = procfile_commands(
        procfile, app=NAIVE_APP, wsgi=NAIVE_WSGI, prefix=PREFIX, queues=QUEUES
    )
    gateway = parse_procfile(dev_procfile).processes.get("gateway")
    if gateway is None:
        raise RuntimeError("Procfile.dev has no gateway line")
    return {"gateway": gateway, **commands}


@dataclass
class NaiveStack:
    """The naive shop on the run's broker and the system's data dir (its databases, and the
    gateway's ledger and keys)."""

    url: str
    broker: Broker
    database: Engine = field(repr=False)
    group: ProcessGroup = field(repr=False)
    gateway_url: str = ""
    # Each process's command line and environment, so one can be started again (faults bench).
    commands: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls, broker: Broker, data_dir: Path, log_dir: Path, env: dict[str, str] | None = None
    ) -> NaiveStack:
        """``env``: settings beside the run's own (the faults bench's timeouts and hooks)."""
        ports = {"web": free_port(), "gateway": free_port()}
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        environ = stack_env(broker.url, data_dir) | (env or {})
        environ["SHOESHOP_GATEWAY_URL"] = gateway_url
        database = naive_tables.open_engine(Settings.from_env(environ))
        naive_tables.prepare(database)
        stack = cls(
            f"http://127.0.0.1:{ports['web']}",
            broker,
            database,
            ProcessGroup("naive", log_dir),
            gateway_url,
        )
        lines = naive_commands(
            (PROJECT_ROOT / "Procfile").read_text(), (PROJECT_ROOT / "Procfile.dev").read_text()
        )
        try:
            for name, command in lines.items():
                port = ports.get(name)
                own = environ if port is None else environ | {"PORT": str(port)}
                stack.commands[name] = (command, own)
                stack.group.spawn(name, command, own)
            # The gateway answers first: the web's first checkout fetches its public key.
            group = stack.group
            wait_ready(gateway_url, [group.processes["gateway"]], group.log_dir, "/healthz")
            group.wait_ready(stack.url)
        except BaseException:
            stack.stop()
            raise
        return stack

    def pids(self) -> dict[int, str]:
        return self.group.pids(self.broker, PREFIX)

    def wait_shipped(
        self, order_ids: list[str], timeout_s: float, progress: Callable[[int], None]
    ) -> list[tuple[float, float]]:
        """Poll the orders table until every order shipped (or the time is up, or STALL_S passed
        without one more); (placed, shipped) of each that did. The reads are the bench's own,
        in its process: they cost the naive shop's processes nothing."""
        deadline = time.monotonic() + timeout_s
        wanted = set(order_ids)
        found: dict[str, tuple[float, float]] = {}
        progressed = time.monotonic()
        while True:
            shipped = naive_tables.shipped_moments(self.database, wanted)
            if len(shipped) > len(found):
                progress(len(shipped) - len(found))
                found, progressed = shipped, time.monotonic()
            now = time.monotonic()
            if len(found) == len(wanted) or now > deadline or now > progressed + STALL_S:
                return list(found.values())
            time.sleep(POLL_INTERVAL_S)

    def catalogue(self) -> list[dict[str, Any]]:
        return naive_tables.catalogue(self.database)

    def stop(self) -> None:
        self.group.stop()
        self.database.dispose()
