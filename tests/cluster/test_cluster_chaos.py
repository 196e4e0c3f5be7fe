"""Cluster chaos (issue #18): the shop on hosts of its own (network namespaces), three clustered
RabbitMQ nodes with quorum queues, a PostgreSQL of its own, 10 orders/s offered from a client
host, and one fault a scenario; each ends with the failure matrix's invariants.

`make cluster-chaos` runs them; the table is printed and written to var/chaos/cluster.json.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.chaos.flow import assert_sound, settle
from tests.cluster.conftest import ClusterRun
from tests.support.invariants import Outcome
from tests.support.shop import wait_for

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
