"""A relay stopped is seen and healed, and the orders placed meanwhile all ship (issue #19).

The relay is the one process that publishes what a writer could not: here the shop's own
publish fails at checkout (its publish_committed reports the broker unreachable), so each
order's order.placed waits in the shop's outbox for the relay. The relay runs as `shoeshop up`
runs it, under `shoeshop supervise --heartbeat` (with a shorter --stale-after), in processes of
its own against the suite's broker and databases. It is stopped both ways a relay stops: it
hangs (SIGSTOP: its heartbeat stops, and its supervisor kills it), or it dies (SIGKILL; its
supervisor is held meanwhile, so the outage lasts long enough to be looked at). /metrics shows
the shop's outbox growing older and the redelivery sweep's record ageing; the supervisor starts
a new relay; every order ships, charged once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from shop import checkout
from tests.support.integration import charges, order, place
from tests.support.processes import Processes
from tests.support.shop import wait_for

pytestmark = pytest.mark.usefixtures("worker")

STALE_AFTER_S = 6
ORDERS = 3


@dataclass
class SupervisedRelay:
    """`shoeshop supervise --heartbeat … -- shoeshop relay`, started as a Procfile line."""

    processes: Processes
    heartbeat: Path

    def pids(self) -> tuple[int, int] | None:
        """(supervisor, relay) while a relay runs (stopped counts as running, dead does not)."""
        for pid in self.processes.running["relay"].members():
            args = _cmdline(pid)
            if args[-1:] == ["relay"] and "supervise" not in args:
                return _parent(pid), pid
        return None

    def running(self) -> tuple[int, int]:
        """Once its relay has begun a second pass (the first one's chores done)."""
        wait_for(self.heartbeat.exists, timeout_s=60)
        first = self.heartbeat.stat().st_mtime_ns
        wait_for(lambda: self.heartbeat.stat().st_mtime_ns != first, timeout_s=30)
        pids = self.pids()
        assert pids is not None, self.log()
        return pids

    def replaced(self, relay: int) -> tuple[int, int] | None:
        """(supervisor, relay) once a relay other than ``relay`` runs."""
        pids = self.pids()
        return pids if pids is not None and pids[1] != relay else None

    def log(self) -> str:
        return self.processes.tail("relay", 20000)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture
def supervised_relay(tmp_path: Path) -> Iterator[SupervisedRelay]:
    processes = Processes(env=dict(os.environ), log_dir=tmp_path / "logs")
    heartbeat = tmp_path / "relay.heartbeat"
    processes.commands["relay"] = (
        f"shoeshop supervise --heartbeat {heartbeat} --stale-after {STALE_AFTER_S} "
        "-- shoeshop relay"
    )
    processes.start("relay")
    try:
        yield SupervisedRelay(processes, heartbeat)
    finally:
        # Anything the test left stopped takes its SIGTERM.
        for pid in processes.running["relay"].members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        processes.close()


class RelayMetrics(NamedTuple):
    backlog: float  # the shop's events not yet published
    age_s: float  # the oldest of them
    checked_age_s: float  # since the redelivery sweep last recorded queue orders' lag


def relay_metrics(client: FlaskClient) -> RelayMetrics:
    response = client.get("/metrics")
    assert response.status_code == 200
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    shop = (("component", "shop"),)
    return RelayMetrics(
        found[("shoeshop_outbox_backlog", shop)],
        found[("shoeshop_outbox_oldest_unpublished_age_seconds", shop)],
        found[("shoeshop_subscriber_lag_checked_age_seconds", (("queue", "orders"),))],
    )


def shipped(client: FlaskClient, order_id: str) -> bool:
    return bool(order(client, order_id)["status"] == "SHIPPED")


def drained(client: FlaskClient) -> RelayMetrics | None:
    """The metrics once the shop's outbox holds nothing unpublished."""
    metrics = relay_metrics(client)
    return metrics if metrics.backlog == 0 else None


@pytest.mark.parametrize("stop", ["hangs", "dies"])
def test_a_stopped_relay_is_seen_and_healed_and_every_order_placed_meanwhile_ships_once(
    client: FlaskClient,
    gateway_url: str,
    supervised_relay: SupervisedRelay,
    monkeypatch: pytest.MonkeyPatch,
    stop: str,
) -> None:
    relay = supervised_relay
    supervisor, first = relay.running()
    wait_for(lambda: drained(client))  # what the relay found, it published

    if stop == "hangs":
        os.kill(first, signal.SIGSTOP)
    else:
        os.kill(supervisor, signal.SIGSTOP)  # held: the relay stays dead while we look
        os.kill(first, signal.SIGKILL)
    with monkeypatch.context() as held:
        held.setattr(checkout, "publish_committed", lambda *_args: False)
        placed = [place(client, sku="TRL-001", size="44") for _ in range(ORDERS)]

    seen = relay_metrics(client)
    time.sleep(1.5)
    later, looked_at = relay_metrics(client), time.time()
    if stop == "dies":
        os.kill(supervisor, signal.SIGCONT)

    assert later.backlog >= ORDERS
    assert later.age_s >= seen.age_s + 1
    assert later.checked_age_s >= seen.checked_age_s + 1
    swept_before = looked_at - later.checked_age_s
    new_supervisor, _ = wait_for(lambda: relay.replaced(first), timeout_s=60)
    assert new_supervisor == supervisor  # the same supervisor started a new relay
    for order_id in placed:
        wait_for(partial(shipped, client, order_id), timeout_s=90)
    healed = wait_for(lambda: drained(client), timeout_s=30)
    assert healed.age_s == 0
    assert time.time() - healed.checked_age_s > swept_before + 1  # the new relay swept
    for order_id in placed:
        assert [c["status"] for c in charges(gateway_url, order_id)] == ["succeeded"]
    log = relay.log()
    if stop == "hangs":
        assert "killing it (SIGKILL)" in log, log
    assert "ended by signal SIGKILL: starting it again" in log, log
