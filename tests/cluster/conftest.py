"""Cluster chaos fixtures: the bed (the private link, PostgreSQL, three RabbitMQ nodes) once for
the session, a shop on its hosts for each scenario (a vhost and a database of its own), and the
results table at the end."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config.settings import QUEUES
from tests.chaos.conftest import RETRIES, Chaos
from tests.cluster import measure
from tests.cluster.bed import Link, Postgres, postgres, private_link
from tests.cluster.hosts import CLIENT, HOSTS, SHOP, HostedProcesses, Load, shop_layout
from tests.cluster.rabbit import Cluster, Node, cluster
from tests.support.invariants import Outcome, ShopUnderTest
from tests.support.processes import ROOT
from tests.support.stack import LIMITS_LIFTED, services_required

_ROWS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster(leaders=1, env={}): the component queues' leaders on node c<leaders>; "
        "settings of the scenario's own",
    )
    config.stash[_ROWS] = []


def missing() -> str | None:
    """Why the bed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the cluster bed needs root (network namespaces, runuser)"
    for tool in (
        "ip",
        "runuser",
        "initdb",
        "postgres",
        "epmd",
        "/usr/lib/rabbitmq/bin/rabbitmqctl",
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass
class Bed:
    link: Link
    postgres: Postgres
    rabbit: Cluster


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    if reason := missing():
        if services_required():
            pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="ccbed-"))
    base.chmod(0o755)  # the rabbitmq and postgres users reach their directories through it
    try:
        with (
            private_link(HOSTS) as link,
            postgres(base / "pg") as database,
            cluster(base / "rabbit") as rabbit,
        ):
            yield Bed(link, database, rabbit)
    finally:
        shutil.rmtree(base, ignore_errors=True)


class ClusterBroker:
    """The cluster as tests/chaos's Chaos sees a broker: taken away node by node, not whole."""

    name = "rabbitmq-cluster"

    def down(self) -> None: ...

    def up(self) -> None: ...

    def restore(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class ClusterRun:
    """One scenario's shop on the bed, its offered load, and what it measured."""

    bed: Bed
    vhost: str
    chaos: Chaos
    logs: Path
    load: Load | None = None
    notes: list[str] = field(default_factory=list)
    refused: int = 0
    row: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def processes(self) -> HostedProcesses:
        assert isinstance(self.chaos.processes, HostedProcesses)
        return self.chaos.processes

    @property
    def env(self) -> dict[str, str]:
        return self.processes.env

    def component_leaders(self) -> dict[str, str]:
        leaders = self.bed.rabbit.leaders(self.vhost)
        return {queue: leaders.get(queue, "?") for queue in QUEUES}

    def unacknowledged(self, queue: str) -> int:
        """Messages of ``queue`` delivered to a consumer and not yet acknowledged."""
        return self.queue_counts("messages_unacknowledged").get(queue, 0)

    def queue_counts(self, column: str) -> dict[str, int]:
        """One of `rabbitmqctl list_queues`' counts (``consumers``, ``messages_unacknowledged``)
        for every queue of the scenario's vhost."""
        out = self.bed.rabbit.ctl(
            self.bed.rabbit.any_running(), "list_queues", "-p", self.vhost, "name", column,
            "--formatter", "json",
        ).stdout  # fmt: skip
        return {q["name"]: int(q[column]) for q in json.loads(out)}

    def start_load(self, rate: float) -> None:
        client = self.bed.link[CLIENT]
        output = self.logs / "load.jsonl"
        self.load = Load.start(client, self.processes.url("web"), rate, output, self.env)

    def stop_load(self) -> list[str]:
        """Stop the load; the ids of the accepted orders. Refused checkouts are noted."""
        assert self.load is not None
        lines = self.load.stop()
        accepted = [line["id"] for line in lines if line.get("status") == 202]
        refused = Counter(str(line.get("status")) for line in lines if line.get("status") != 202)
        retried = sum(line.get("attempts", 1) > 1 for line in lines)
        self.refused = len(lines) - len(accepted)
        self.notes.append(
            f"{len(lines)} checkouts offered, {len(accepted)} accepted, {retried} retried by "
            f"the client" + (f", refused: {dict(refused)}" if refused else "")
        )
        return accepted

    def parked_reasons(self) -> dict[str, str]:
        """Each parked letter's order and why it was parked (task: exception, message)."""
        return {
            str(letter.get("subject")): f"{letter.get('task')}: {letter.get('exception')} "
            f"{str(letter.get('message') or '')[:120]}".strip()
            for letter in self.chaos.shop.dead_letters()
            if letter.get("subject")
        }

    def finish(self, name: str, outcome: Outcome, fault: float, end: float) -> None:
        for order, reason in self.parked_reasons().items():
            self.notes.append(f"parked: order {order}, {reason}")
        times = measure.dispatch_times(self.env)
        recovery = measure.recovery_s(times, fault, end)
        before = measure.per_second(times, fault - measure.LEVEL_WINDOW_S, fault)
        after = measure.per_second(times, fault, min(end, fault + 120))
        self.notes.append(f"shipped/s before the fault {before}, after {after}")
        outcome.notes.extend(self.notes)
        self.row = {
            "name": name,
            "result": measure.result(name, outcome, recovery),
            "notes": outcome.notes,
            "problems": outcome.problems,
        }


def shop_env(data_dir: Path, broker_url: str, database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    return {
        **env,
        **RETRIES,
        # The relay's redelivery at its default, not the failure matrix's 20 s: under a 10/s
        # backlog a 20 s sweep re-sends thousands of events that are only waiting in a queue,
        # every 15 s, and the duplicates starve the workers (docs/reliability.md).
        "SHOESHOP_REDELIVER_AFTER": "300",
        "SHOESHOP_DATA_DIR": str(data_dir),
        "SHOESHOP_BROKER_URL": broker_url,
        "SHOESHOP_DATABASE_URL": database_url,
        "SHOESHOP_ADMIN_PASSWORD": "chaos",
        # 10 checkouts a second from one client address are far past the customer's limit.
        "SHOESHOP_RATE_LIMITS": LIMITS_LIFTED,
    }


def on_host(processes: HostedProcesses, host: str, *command: str, **extra: str) -> None:
    """Run a one-off command on a host, in the shop's environment, as an operator would."""
    assert processes.link is not None
    subprocess.run(
        processes.link[host].argv(*command),
        env={**processes.env, **extra},
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=180,
    )


def prepare(run: ClusterRun, leader: Node) -> None:
    """Migrate and seed from the operations host (as a deployment does first), then declare
    the queues through ``leader``, so that it leads them; check that it does."""
    processes = run.processes
    python = sys.executable
    on_host(processes, "ops1", str(Path(python).parent / "shoeshop"), "db", "upgrade")
    on_host(processes, "ops1", python, "-c", "from shop import create_app; create_app()")
    one_node = run.bed.rabbit.url(run.vhost, [leader])
    on_host(processes, "ops1", python, "-m", "tests.cluster.queues", SHOESHOP_BROKER_URL=one_node)
    leaders = run.component_leaders()
    assert set(leaders.values()) == {leader.name}, f"leaders not placed on {leader.name}: {leaders}"


@pytest.fixture
def cluster_shop(request: pytest.FixtureRequest, bed: Bed, tmp_path: Path) -> Iterator[ClusterRun]:
    marker = request.node.get_closest_marker("cluster")
    leader = bed.rabbit.nodes[(marker.kwargs.get("leaders", 1) if marker else 1) - 1]
    suffix = uuid.uuid4().hex[:8]
    vhost, database = f"shop-{suffix}", f"shop_{suffix}"
    bed.rabbit.add_vhost(vhost)
    env = shop_env(tmp_path / "var", bed.rabbit.url(vhost), bed.postgres.create_database(database))
    env.update(marker.kwargs.get("env", {}) if marker else {})
    processes = HostedProcesses(env, tmp_path / "logs", link=bed.link, placement=shop_layout())
    shop = ShopUnderTest(processes.url("web"), processes.url("gateway"), processes.env)
    run = ClusterRun(bed, vhost, Chaos(ClusterBroker(), processes, shop, fast=False), tmp_path)
    try:
        prepare(run, leader)
        processes.start_all(SHOP)
        yield run
    finally:
        try:
            if run.load is not None and run.load.popen.poll() is None:
                run.load.stop()
            for node in bed.rabbit.nodes:  # a scenario that failed with a node down
                if not node.running():
                    bed.rabbit.start(node)
            leftovers = processes.close()
        finally:
            bed.rabbit.delete_vhost(vhost)
            _drop_database(bed.postgres, database)
    if run.row is not None:
        run.row["seconds"] = time.monotonic() - run.started
        run.row["verdict"] = getattr(request.node, "_cluster_verdict", "FAIL")
        request.config.stash[_ROWS].append(run.row)
    assert leftovers == [], f"processes outlived SIGTERM and had to be killed: {leftovers}"


def _drop_database(server: Postgres, name: str) -> None:
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(server.url(), autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item._cluster_verdict = "pass" if report.passed else "FAIL"  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash[_ROWS]
    if not rows:
        return
    path = measure.write(rows)
    terminalreporter.section("cluster chaos")
    terminalreporter.write_line(measure.table(rows))
    for row in rows:
        for note in row["notes"]:
            terminalreporter.write_line(f"{row['name']}: {note}")
    terminalreporter.write_line(f"written to {path}")
