"""One phase of a benchmark: place orders, wait for all of them, and measure what it cost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from workers.bench import measure, procstat
from workers.bench.load import Placement, intake, place_many
from workers.bench.stack import task_totals

POLL_INTERVAL_S = 0.5
# Give up when no order finished for this long: a lost order must not hold the run for the
# whole timeout (the run then reports it and exits non-zero).
STALL_S = 60.0

Progress = Callable[[int], None]


class Target(Protocol):
    url: str

    def pids(self) -> dict[int, str]: ...


class Peer(Target, Protocol):
    """A baseline: it knows by itself when its orders have shipped."""

    def wait_shipped(
        self, order_ids: list[str], timeout_s: float, progress: Progress
    ) -> list[tuple[float, float]]: ...


@dataclass
class Phase:
    """What to run: how many orders, how fast, from how many client threads."""

    name: str
    orders: int
    concurrency: int
    rate: float | None
    timeout_s: float


@dataclass
class Outcome:
    """Per order (placed, finished) moments plus everything measured around them."""

    placements: list[Placement]
    moments: list[tuple[float, float]]
    cpu_s: dict[str, float]
    rss_mb: dict[str, float]
    tasks: int

    def summary(self, expected: int) -> dict[str, Any]:
        finished = len(self.moments)
        first = min((placed for placed, _ in self.moments), default=0.0)
        last = max((done for _, done in self.moments), default=0.0)
        accepted = intake(self.placements)
        return {
            "orders": expected,
            "finished": finished,
            "orders_per_s": round(measure.rate(finished, first, last), 2),
            "intake_rps": accepted["rps"],
            "intake": accepted,
            "latency_ms": measure.summary_ms([done - placed for placed, done in self.moments]),
            "messages_per_order": round(self.tasks / finished, 2) if finished else None,
            "cpu_s_per_order": measure.per_order(self.cpu_s, finished),
            "cpu_s_per_order_total": round(sum(self.cpu_s.values()) / finished, 4)
            if finished
            else None,
            "rss_mb": self.rss_mb,
        }


def _measured(
    target: Target,
    broker_url: str,
    nodes: str | None,
    run: Callable[[procstat.ProcessUsage], tuple[list[Placement], list[tuple[float, float]]]],
) -> Outcome:
    """``nodes``: the prefix of the workers' node names whose tasks count (None: the system's)."""
    tasks_before = task_totals(broker_url, nodes)
    usage = procstat.ProcessUsage(target.pids)
    usage.start()
    try:
        placements, moments = run(usage)
    finally:
        usage.stop()
    tasks = task_totals(broker_url, nodes) - tasks_before
    return Outcome(placements, moments, usage.cpu_by_kind(), usage.peak_rss_mb_by_kind(), tasks)


def run_system(
    target: Target,
    broker_url: str,
    phase: Phase,
    bodies: Iterator[dict[str, Any]],
    progress: Progress,
    between: Callable[[], None] | None = None,
) -> Outcome:
    """Place the orders at the shop, then read each one's timeline once it has shipped.

    ``between`` runs after the last order was accepted and before the wait (backlog mode brings
    the broker back there).
    """

    def run(usage: procstat.ProcessUsage) -> tuple[list[Placement], list[tuple[float, float]]]:
        placements = place_many(
            f"{target.url}/api/orders",
            bodies,
            phase.orders,
            concurrency=phase.concurrency,
            rate=phase.rate,
            on_done=lambda _: progress(1),
        )
        if between is not None:
            between()
        ids = [p.order_id for p in placements if p.order_id]
        moments = wait_shipped(target, usage, ids, phase.timeout_s, progress)
        return placements, moments

    return _measured(target, broker_url, None, run)


def run_baseline(
    stack: Peer,
    nodes: str,
    broker_url: str,
    phase: Phase,
    bodies: Iterator[dict[str, Any]],
    progress: Progress,
) -> Outcome:
    """Place the orders at a baseline whose workers are the nodes named ``nodes``…, and wait."""

    def run(_usage: procstat.ProcessUsage) -> tuple[list[Placement], list[tuple[float, float]]]:
        placements = place_many(
            f"{stack.url}/api/orders",
            bodies,
            phase.orders,
            concurrency=phase.concurrency,
            rate=phase.rate,
            on_done=lambda _: progress(1),
        )
        ids = [p.order_id for p in placements if p.order_id]
        return placements, stack.wait_shipped(ids, phase.timeout_s, progress)

    return _measured(stack, broker_url, nodes, run)


def wait_shipped(
    target: Target,
    usage: procstat.ProcessUsage,
    order_ids: list[str],
    timeout_s: float,
    progress: Progress,
) -> list[tuple[float, float]]:
    """Wait until every order shipped, reading as little as possible while the stack works.

    One order (the last placed) is watched until it ships; only then is every pending order read.
    The web server's CPU spent on these reads is taken out of its account. Once orders have
    started to ship, STALL_S without one more ends the wait.
    """
    deadline = time.monotonic() + timeout_s
    pending = list(order_ids)
    moments: list[tuple[float, float]] = []
    progressed: float | None = None  # the last sweep that found shipped orders
    with httpx.Client(base_url=target.url, timeout=30) as client:
        while pending and time.monotonic() < deadline:
            if progressed is not None and time.monotonic() > progressed + STALL_S:
                break  # the rest are stuck, not slow: the report says how many
            if _view(client, pending[-1]).get("status") == "SHIPPED":
                web_before = _cpu_of(target.pids(), "web")
                still: list[str] = []
                for order_id in pending:
                    found = measure.placed_and_shipped(_view(client, order_id))
                    if found is None:
                        still.append(order_id)
                    else:
                        moments.append(found)
                usage.exclude("web", _cpu_of(target.pids(), "web") - web_before)
                progress(len(pending) - len(still))
                if len(still) < len(pending):
                    progressed = time.monotonic()
                pending = still
            if pending:
                time.sleep(POLL_INTERVAL_S)
    return moments


def _view(client: httpx.Client, order_id: str) -> Mapping[str, Any]:
    """The order as the API shows it; an error or a slow answer reads as "not yet"."""
    try:
        response = client.get(f"/api/orders/{order_id}")
    except httpx.HTTPError:
        return {}
    return response.json() if response.status_code == 200 else {}


def _cpu_of(pids: Mapping[int, str], kind: str) -> float:
    total = 0.0
    for pid, found in pids.items():
        if found == kind:
            try:
                total += procstat.cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                continue
    return total
