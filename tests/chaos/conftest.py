"""Chaos fixtures: a whole shop from its Procfile lines, a broker to take away, and the tally."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import brokers, report
from tests.support import stack as stacks
from tests.support.invariants import Outcome, ShopUnderTest
from tests.support.processes import Processes, seed_catalogue
from workers.mailcatcher import start_in_thread as start_catcher

# Every process a scenario needs; flower and beat add nothing to the faults we inject.
SHOP = ("gateway", "web", "shop", "orders", "payments", "shipping", "notifications", "relay")
WORKERS = ("shop", "orders", "payments", "shipping")
# Every worker that consumes a queue: the saga's, and notifications, which only watches orders
# (its mails never hold one up, so the scenarios break the saga's workers only).
CONSUMERS = (*WORKERS, "notifications")
# Small and fast, so that exhausting retries takes seconds, not minutes.
RETRIES = {
    "SHOESHOP_RETRY_BASE_DELAY": "0.2",
    "SHOESHOP_RETRY_MAX_DELAY": "2",
    "SHOESHOP_MAX_RETRIES": "5",
    # Above the longest retry wait plus a gateway call, and short enough that a SIGKILLed
    # worker's taken messages come back to the others within the scenario.
    "SHOESHOP_VISIBILITY_TIMEOUT": "15",
    # The relay re-sends what a subscriber never applied after this long (a message Redis lost
    # when a worker was killed between taking it and recording it as unacknowledged).
    "SHOESHOP_REDELIVER_AFTER": "20",
}
_RESULTS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-fast", action="store_true", help="fewer orders per scenario (make chaos-fast)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos_fast: part of the fast chaos subset in make test")
    config.addinivalue_line(
        "markers",
        "shop(copies=1, threads=None, env=None): run each consumer as `copies` workers of "
        "`threads` threads (the Procfile's when None), every process with `env` added",
    )
    config.stash[_RESULTS] = []


@dataclass
class Chaos:
    """One scenario's running shop: its processes, its broker, and how to talk to it."""

    broker: brokers.Broker
    processes: Processes
    shop: ShopUnderTest
    fast: bool
    outcome: Outcome | None = None
    started: float = field(default_factory=time.monotonic)

    def scale(self, full: int, fast: int) -> int:
        return fast if self.fast else full


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "rabbitmq" and (reason := stacks.services_missing()):
        if stacks.services_required():
            pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return name


def shop_env(stack: stacks.Stack, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    return {**env, **stack.env, **RETRIES, "SHOESHOP_ADMIN_PASSWORD": "chaos", **extra}


def scale_out(processes: Processes, copies: int, threads: int | None) -> tuple[str, ...]:
    """Run each consumer as ``copies`` workers of ``threads`` threads each (the Procfile's
    ``--concurrency`` when None): its own line, and ``<name>2``… with node names of their own
    (``-n <name>2@%h``), as README's *Processes and scaling* adds workers. Returns the names of
    the added processes."""
    added: list[str] = []
    for name in CONSUMERS:
        line = processes.commands[name]
        if threads is not None:
            line, found = re.subn(r"--concurrency [0-9]+", f"--concurrency {threads}", line)
            assert found == 1, f"the Procfile's {name} line names no --concurrency: {line}"
            processes.commands[name] = line
        for copy in range(2, copies + 1):
            twin, found = re.subn(rf"-n {name}@", f"-n {name}{copy}@", line)
            assert found == 1, f"the Procfile's {name} line names no node -n {name}@…: {line}"
            processes.commands[f"{name}{copy}"] = twin
            added.append(f"{name}{copy}")
    return tuple(added)


def component_of(process: str) -> str:
    """The Procfile line a process runs: ``orders2`` (a second orders worker) → ``orders``."""
    return process.rstrip("0123456789")


@pytest.fixture
def chaos(request: pytest.FixtureRequest, broker_name: str, tmp_path: Path) -> Iterator[Chaos]:
    layout = request.node.get_closest_marker("shop")
    options: dict[str, Any] = layout.kwargs if layout else {}
    broker, stack = brokers.start(broker_name, tmp_path / "var")
    # The mails go to a catcher of the test's own: notifications runs as in production.
    catcher = start_catcher(tmp_path / "mail")
    env = shop_env(stack, SHOESHOP_SMTP_URL=catcher.url, **options.get("env", {}))
    processes = Processes(env, tmp_path / "logs")
    started = time.monotonic()
    try:
        seed_catalogue(processes.env)
        copies = scale_out(processes, options.get("copies", 1), options.get("threads"))
        processes.start_all(SHOP + copies)
        shop = ShopUnderTest(processes.url("web"), processes.url("gateway"), processes.env)
        run = Chaos(broker, processes, shop, bool(request.config.getoption("--chaos-fast")))
        yield run
    finally:
        try:
            broker.restore()  # a scenario that failed with the broker down: back first
            leftovers = processes.close()
        finally:
            stack.close()
            catcher.stop()
    _tally(request, broker_name, run, started)
    assert leftovers == [], f"processes outlived SIGTERM and had to be killed: {leftovers}"


def _tally(request: pytest.FixtureRequest, broker_name: str, run: Chaos, started: float) -> None:
    if run.outcome is None:
        return
    node = request.node
    result = getattr(node, "_chaos_result", "FAIL")
    scenario = node.originalname.removeprefix("test_")
    request.config.stash[_RESULTS].append(
        {
            "scenario": scenario,
            "broker": broker_name,
            **run.outcome.counts(),
            "result": result,
            "seconds": time.monotonic() - started,
            "notes": run.outcome.notes,
            "problems": run.outcome.problems,
        }
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        expected = hasattr(rep, "wasxfail")
        if rep.failed:
            result = "XPASS(strict)" if expected else "FAIL"
        elif expected:
            result = "xfail" if rep.skipped else "XPASS"
        else:
            result = "pass"
        item._chaos_result = result  # type: ignore[attr-defined]
    return rep


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash[_RESULTS]
    if not rows:
        return
    path = report.write(rows)
    terminalreporter.section("failure matrix")
    terminalreporter.write_line(report.table(rows))
    terminalreporter.write_line(f"written to {path}")
