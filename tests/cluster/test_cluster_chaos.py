"""Cluster chaos (issue #18): the shop on hosts of its own (network namespaces), three clustered
RabbitMQ nodes with quorum queues, a PostgreSQL of its own, 10 orders/s offered from a client
host, and one fault a scenario; each ends with the failure matrix's invariants.

`make cluster-chaos` runs them; the table is printed and written to var/chaos/cluster.json.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.chaos.flow import assert_sound, settle
from tests.cluster.conftest import ClusterRun
from tests.cluster.hosts import PORTS, HostedProcesses
from tests.support.invariants import Outcome
from tests.support.processes import PROCFILE
from tests.support.shop import order_body, wait_for
from workers.launcher import procfile_processes

pytestmark = pytest.mark.timeout(900)

RATE = 10.0  # orders offered per second, the steady load
WARMUP_S = 20  # load before the fault: the level recovery is measured against
SETTLE_S = 240


def assert_ended(run: ClusterRun, outcome: Outcome, order_ids: list[str]) -> None:
    """The issue's invariants: every order shipped, cancelled, or parked with a reason (an
    operator's to replay), none lost; assert_sound has checked charges and stock."""
    assert outcome.lost == 0
    assert outcome.shipped + outcome.cancelled + outcome.parked == len(order_ids)
    assert all(run.parked_reasons().values()), "a parked order without a reason"


@pytest.mark.cluster(leaders=1)
def test_leader_node_killed(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    rabbit = run.bed.rabbit
    # Given every component queue led by one node, and orders offered at a steady rate
    leaders = run.component_leaders()
    victim = rabbit.node(Counter(leaders.values()).most_common(1)[0][0])
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    # When that node is SIGKILLed, kept down for 30 s, then started again
    fault = time.time()
    rabbit.kill(victim)
    time.sleep(30)
    moved = run.component_leaders()
    rabbit.start(victim)
    back = time.time()
    time.sleep(20)
    order_ids = run.stop_load()
    end = time.time()
    # Then no order is lost, nobody is charged twice, stock is conserved, and the shop ships
    # again at half its earlier rate soon after the fault
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    run.notes.append(f"leaders before {leaders}; while {victim.name} was down {moved}")
    members = {q: len(m) for q, m in rabbit.members(run.vhost).items() if q in leaders}
    run.notes.append(f"{victim.name} back after {back - fault:.0f} s; replicas {members}")
    run.finish("leader-node-killed", outcome, fault, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)
    assert victim.name not in moved.values(), f"a dead node still leads: {moved}"
    assert run.refused == 0, "a checkout was refused while a broker node was down"


def test_postgres_restarted(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    # Given orders offered at a steady rate
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    # When the database is restarted (a fast shutdown: every session is ended, then it starts)
    fault = time.time()
    run.bed.postgres.restart()
    run.notes.append(f"PostgreSQL away for {time.time() - fault:.1f} s")
    time.sleep(40)
    order_ids = run.stop_load()
    end = time.time()
    # Then nothing is lost, nobody is charged twice, stock is conserved
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    run.finish("postgres-restarted", outcome, fault, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)


PARTITIONED_HOST = "payments1"
PARTITION_S = 30  # far longer than a message takes (a charge: the gateway's 200 ms)


def test_worker_host_partitioned(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    # Given a gateway slow enough that the payments host always holds messages it has taken
    run.processes.restart("gateway", {"SHOESHOP_GATEWAY_LATENCY_MS": "200"})
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    held = wait_for(lambda: run.unacknowledged("payments"), timeout_s=30, every_s=0.1)
    # When that host is cut off the link (its cable unplugged: nothing closes, nothing passes)
    fault = time.time()
    run.bed.link.cut(PARTITIONED_HOST)
    try:
        time.sleep(PARTITION_S)
    finally:
        run.bed.link.mend(PARTITIONED_HOST)
    run.notes.append(f"{PARTITIONED_HOST} cut for {PARTITION_S} s holding {held} unacknowledged")
    time.sleep(30)
    order_ids = run.stop_load()
    end = time.time()
    # Then nothing is lost and nobody is charged twice
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    run.finish("worker-host-partitioned", outcome, fault, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)


def test_rolling_restart(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    rabbit = run.bed.rabbit
    # Given orders offered at a steady rate
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    # When each node in turn is stopped cleanly and started again, as an upgrade does, each
    # only once no quorum queue would lose its majority without it
    fault = time.time()
    for node in rabbit.nodes:
        waited = rabbit.wait_safe_to_stop(node)
        stopping = time.time()
        rabbit.stop(node)
        rabbit.start(node)
        run.notes.append(
            f"{node.name}: waited {waited:.0f} s until not quorum-critical, stopped at "
            f"+{stopping - fault:.0f} s, running again at +{time.time() - fault:.0f} s"
        )
    time.sleep(20)
    order_ids = run.stop_load()
    end = time.time()
    # Then nothing is lost, nobody is charged twice, stock is conserved
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    run.finish("rolling-restart", outcome, fault, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)
    assert run.refused == 0, "a checkout was refused during the rolling restart"


WORKERS = ("shop", "orders", "payments", "shipping", "notifications")
# The reordering hook's seed (workers/messaging/chaos.py): events sent late and 30% of them
# twice, so duplicates are offered to both hosts of a queue all along.
REORDER_SEED = 18
TWIN_DOWN_S = 20


@pytest.mark.cluster(env={"SHOESHOP_CHAOS_REORDER": str(REORDER_SEED)})
def test_two_hosts_per_queue(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    processes = run.processes
    # Given every worker kind consuming from two hosts, two relays publishing the outboxes, and
    # events sent late and twice
    lines = procfile_processes(PROCFILE)
    for kind in WORKERS:
        processes.place(f"{kind}-2", f"{kind}2", line=lines[kind])
        processes.start(f"{kind}-2", wait=False)
    processes.place("relay-2", "ops2", line=lines["relay"])
    processes.start("relay-2", wait=False)
    wait_for(
        lambda: all(run.queue_counts("consumers").get(kind, 0) >= 2 for kind in WORKERS) or None,
        timeout_s=90,
        every_s=1,
    )
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    # When the first host of each pair is SIGKILLed while it holds messages (they go to its
    # twin, which may have applied a copy already), then started again
    fault = time.time()
    for kind in (*WORKERS, "relay"):
        processes.kill(kind)
    time.sleep(TWIN_DOWN_S)
    for kind in (*WORKERS, "relay"):
        processes.start(kind, wait=False)
    time.sleep(20)
    order_ids = run.stop_load()
    end = time.time()
    # Then every order ended once: nobody charged twice, stock conserved, no second mail
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    both = {
        kind: len(handled(processes, kind) & handled(processes, f"{kind}-2")) for kind in WORKERS
    }
    skipped = {kind: skips(processes, kind) + skips(processes, f"{kind}-2") for kind in WORKERS}
    run.notes.append(f"messages (one task id) handled on both hosts of a queue: {both}")
    run.notes.append(f"deliveries the inbox skipped (applied already), per queue: {skipped}")
    # The writers publish inline; a relay sends what a writer killed between its commit and its
    # publish left behind (tests/integration/test_outbox_relay.py runs two relays on a backlog).
    relayed = {name: relayed_events(processes, name) for name in ("relay", "relay-2")}
    run.notes.append(f"events each relay sent from the outboxes: {relayed}")
    run.finish("two-hosts-per-queue", outcome, fault, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)
    assert sum(both.values()) > 0, "no message reached both hosts of a queue: nothing was shown"
    assert processes.exited().get("relay-2") is None, processes.tail("relay-2")


RELAYED = re.compile(r"relayed (\d+) event\(s\) from")


def relayed_events(processes: HostedProcesses, name: str) -> int:
    """The events a relay sent from the outboxes (workers.operations.relay's log line)."""
    return sum(map(int, RELAYED.findall(processes.log(name).read_text(errors="replace"))))


# Celery's line for each message a worker handled (its "received" line is kept out of the log).
HANDLED = re.compile(r"Task [\w.]+\[([0-9a-f-]{36})\] succeeded")


def handled(processes: HostedProcesses, name: str) -> set[str]:
    """The task ids of the messages a worker handled (a copy of an event keeps its task id)."""
    return set(HANDLED.findall(processes.log(name).read_text(errors="replace")))


def skips(processes: HostedProcesses, name: str) -> int:
    """Deliveries a worker's inbox turned away: the event was applied already (unit_of_work)."""
    return processes.log(name).read_text(errors="replace").count(" already applied by ")


WATCHED_ORDERS = 10
STREAM_TIMEOUT_S = 180


def test_live_on_two_web_hosts(cluster_shop: ClusterRun) -> None:
    run = cluster_shop
    processes = run.processes
    # Given a second web host, each web subscribed to the shop's changes on the cluster
    processes.ports["web2"] = PORTS["web"]
    processes.place("web2", "web2", line=procfile_processes(PROCFILE)["web"])
    processes.start("web2", wait=False)
    webs = {"web1": processes.url("web"), "web2": processes.url("web2")}
    wait_for(lambda: all(ready(url) for url in webs.values()) or None, timeout_s=90, every_s=0.5)
    run.start_load(RATE)
    time.sleep(WARMUP_S)
    # When a customer's tracking page is open on each web host for each of ten new orders, placed
    # while shipping is stopped (SIGTERM) so that each still has a change to push once its pages
    # are open: in a CI run on 2026-12-01 all ten had shipped before their pages opened, every
    # frame was a first read, and the scenario could not tell a push from a read
    opened = time.time()
    processes.stop("shipping")
    watched = [place(webs["web1"]) for _ in range(WATCHED_ORDERS)]
    seen: dict[tuple[str, str], list[dict[str, object]]] = {}
    readers = [
        threading.Thread(target=watch, args=(url, order_id, seen.setdefault((host, order_id), [])))
        for order_id in watched
        for host, url in webs.items()
    ]
    for reader in readers:
        reader.start()
    # ... and shipping starts again once every page has its first frame
    wait_for(lambda: all(seen.values()) or None, timeout_s=60, every_s=0.2)
    processes.start("shipping", wait=False)
    for reader in readers:
        reader.join(STREAM_TIMEOUT_S + 10)
    order_ids = [*run.stop_load(), *watched]
    end = time.time()
    outcome = settle(run.chaos, order_ids, timeout_s=SETTLE_S)
    # Then both pages of an order saw it to the same end, each pushed its changes as they
    # happened, and the shop's invariants hold
    same = sum(
        [frame["id"] for frame in seen[("web1", o)]] == [frame["id"] for frame in seen[("web2", o)]]
        for o in watched
    )
    pushed = {
        host: sum(f["pushed"] is True for (h, _), fs in seen.items() if h == host for f in fs)
        for host in webs
    }
    run.notes.append(
        f"{WATCHED_ORDERS} orders watched on both web hosts: {same} saw the very same frames; "
        f"frames pushed from the shop's commits: {pushed}"
    )
    run.finish("live-on-two-web-hosts", outcome, opened, end)
    assert_sound(outcome)
    assert_ended(run, outcome, order_ids)
    for order_id in watched:
        first, second = seen[("web1", order_id)], seen[("web2", order_id)]
        assert first and second, f"a page of {order_id} got no frame: {first} {second}"
        assert first[-1]["view"] == second[-1]["view"], f"the pages of {order_id} ended apart"
        assert first[-1]["view"]["status"] in ("SHIPPED", "CANCELLED"), first[-1]
    assert all(pushed.values()), f"a web host pushed nothing: {pushed}"


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def place(url: str) -> str:
    answer = httpx.post(f"{url}/api/orders", json=order_body(), timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def watch(url: str, order_id: str, frames: list[dict[str, object]]) -> None:
    """Read an order's tracking stream until its final frame (or STREAM_TIMEOUT_S), as the page's
    EventSource does; each frame: {"id", "view", "pushed"} (pushed: it carried the shop's
    commit time, so it came from a notice, not from a read)."""
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    with httpx.stream("GET", f"{url}/orders/{order_id}/events", timeout=30) as answer:
        fields: dict[str, str] = {}
        pushed = False
        for line in answer.iter_lines():
            if time.monotonic() > deadline:
                return
            if line.startswith(": committed"):
                pushed = True
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
            elif not line and "data" in fields:
                view = json.loads(fields["data"])
                frames.append({"id": int(fields["id"]), "view": view, "pushed": pushed})
                if view["status"] in ("SHIPPED", "CANCELLED"):
                    return
                fields, pushed = {}, False
            elif not line:
                fields, pushed = {}, False
