"""``shoeshop bench faults``: the naive shop through the failure matrix's faults, counted.

Three of tests/chaos's scenarios, each on a fresh naive database, a fresh gateway ledger and a
fresh stack (and a fresh embedded Redis when the bench owns the broker), with the matrix's
settings where they touch what the naive shop has (SHOESHOP_VISIBILITY_TIMEOUT=15, the slowed
gateway):

- ``worker-killed`` (matrix 2): orders placed at a steady rate while the four workers are
  SIGKILLed in turn, eight kills at random moments, each started again at once; the gateway
  answers in 150 ms so kills land inside charges.
- ``broker-restarted`` (matrix 4): one second into the orders the broker is stopped, three
  seconds later started again; the gateway answers in 500 ms so payments holds messages. Only
  on the embedded Redis: the bench does not stop a broker it was given.
- ``duplicate-delivery`` (matrix 5): every chain message sent twice with the same task id
  (naive_app's hook, SHOESHOP_NAIVE_DUPLICATE=1).

Then it waits until the shop is quiet (every order final and the queues empty, nothing moving
for QUIET_S; or nothing moving for STALL_S) and counts (faults_count).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
from kombu.connection import Connection
from sqlalchemy import select

from workers.bench import faults_count, naive_tables, report
from workers.bench.faults_count import OrderRow, ScenarioCount, StockRow
from workers.bench.load import Placement, order_bodies, place_many
from workers.bench.naive import NaiveStack
from workers.bench.naive_app import DUPLICATE_ENV, PREFIX, QUEUES
from workers.bench.stack import Broker

SCENARIOS = ("worker-killed", "broker-restarted", "duplicate-delivery")
NEEDS_EMBEDDED = ("broker-restarted",)
# The failure matrix's retry and redelivery settings (tests/chaos/conftest.py RETRIES), given
# to the naive shop as the matrix gives them to the system: retries capped at 2 s, and a
# visibility timeout short enough that a killed worker's taken messages come back within the
# scenario (the naive shop has no other way back).
MATRIX_ENV = {
    "SHOESHOP_RETRY_BASE_DELAY": "0.2",
    "SHOESHOP_RETRY_MAX_DELAY": "2",
    "SHOESHOP_MAX_RETRIES": "5",
    "SHOESHOP_VISIBILITY_TIMEOUT": "15",
}
# The matrix's gateway latencies for its scenarios 2 and 4.
GATEWAY_LATENCY_MS = {"worker-killed": 150, "broker-restarted": 500}
# Scenario 2's kills: eight, each worker twice, shuffled by a fixed seed, 0.3 to 1.5 s apart.
KILLS = 8
KILL_SEED = 3
KILL_GAP_S = (0.3, 1.5)
# Scenario 4's outage: one second into the orders, three seconds long.
OUTAGE_AFTER_S = 1.0
OUTAGE_S = 3.0
# Quiet: every order final, the queues empty and nothing moving for QUIET_S. Stalled: nothing
# moving for STALL_S, longer than the visibility timeout (15 s) plus a whole retry budget
# (under 10 s with the matrix's settings) and a gateway call (5 s), so an order whose message
# is still coming back or retrying is not counted lost.
QUIET_S = 5.0
STALL_S = 45.0
POLL_S = 1.0
CLIENTS = 8
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FaultsOptions:
    broker_url: str | None
    orders: int
    rate: float
    scenarios: tuple[str, ...]
    out_dir: Path
    keep: bool

    @property
    def timeout_s(self) -> float:
        """The longest a scenario waits for quiet after its last order."""
        return 2 * STALL_S + self.orders


def run_faults(options: FaultsOptions) -> dict[str, Any]:
    """Run each scenario asked for, print the table, write var/bench/faults-<stamp>.json."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (options.out_dir / f"faults-run-{stamp}").resolve()
    rows: list[ScenarioCount] = []
    skipped: list[str] = []
    for name in options.scenarios:
        if name in NEEDS_EMBEDDED and options.broker_url:
            skipped.append(f"{name}: needs the embedded broker, which the bench can stop")
            click.echo(f"skipped {skipped[-1]}")
            continue
        click.echo(f"{name}: {options.orders} orders at {options.rate:g}/s …")
        rows.append(_scenario(options, name, run_dir / name))
        click.echo(f"  {rows[-1]}")
    result = faults_count.report(
        rows,
        broker=report.redact(options.broker_url or "embedded redis"),
        started=stamp,
        machine=report.machine(),
    )
    result |= {"orders_per_scenario": options.orders, "rate": options.rate, "skipped": skipped}
    path = options.out_dir / f"faults-{stamp}.json"
    report.write_json(result, path)
    click.echo(faults_count.table(rows))
    click.echo(f"written: {path}")
    if not options.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _scenario(options: FaultsOptions, name: str, data_dir: Path) -> ScenarioCount:
    (data_dir / "logs").mkdir(parents=True)
    broker = Broker.open(options.broker_url, data_dir)
    try:
        if options.broker_url:
            _purge(broker.url)  # a previous scenario's leftovers are about orders gone now
        stack = NaiveStack.start(broker, data_dir, data_dir / "logs", _env(name))
        try:
            return _drive(options, name, stack)
        finally:
            stack.stop()
    finally:
        broker.close()


def _env(name: str) -> dict[str, str]:
    env = dict(MATRIX_ENV)
    if name in GATEWAY_LATENCY_MS:
        env["SHOESHOP_GATEWAY_LATENCY_MS"] = str(GATEWAY_LATENCY_MS[name])
    if name == "duplicate-delivery":
        env[DUPLICATE_ENV] = "1"
    return env


def _drive(options: FaultsOptions, name: str, stack: NaiveStack) -> ScenarioCount:
    """Place the orders while the fault happens, wait for quiet, count."""
    initial = {key: row.available for key, row in _stock(stack).items()}
    bodies = order_bodies(stack.catalogue())
    placements: list[Placement] = []
    placing = threading.Thread(
        target=lambda: placements.extend(
            place_many(
                f"{stack.url}/api/orders",
                bodies,
                options.orders,
                concurrency=CLIENTS,
                rate=options.rate,
            )
        )
    )
    placing.start()
    notes = FAULTS[name](stack)
    placing.join()
    accepted = [p.order_id for p in placements if p.status == 202 and p.order_id]
    notes.append(_wait_quiet(stack, accepted, options.timeout_s))
    return faults_count.count(
        name,
        accepted,
        len(placements) - len(accepted),
        _orders(stack),
        _charges(stack.gateway_url),
        _stock(stack),
        initial,
        notes,
    )


def _kill_workers(stack: NaiveStack) -> list[str]:
    """SIGKILL each worker (its whole process group) in turn, starting it again at once."""
    rng = random.Random(KILL_SEED)
    workers = [PREFIX + queue for queue in QUEUES]
    victims = [w for _ in range(2) for w in rng.sample(workers, len(workers))][:KILLS]
    for number, victim in enumerate(victims, start=1):
        time.sleep(rng.uniform(*KILL_GAP_S))
        process = stack.group.processes[victim]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        # Keep the killed one's log beside the new one's.
        log = stack.group.log_dir / f"naive-{victim}.log"
        log.rename(log.with_suffix(f".killed-{number}.log"))
        command, env = stack.commands[victim]
        stack.group.spawn(victim, command, env)
    return [f"SIGKILLed and restarted: {', '.join(victims)}"]


def _restart_broker(stack: NaiveStack) -> list[str]:
    time.sleep(OUTAGE_AFTER_S)
    stack.broker.take_away()
    time.sleep(OUTAGE_S)
    stack.broker.bring_back()
    return [f"broker stopped {OUTAGE_AFTER_S:g} s into the orders for {OUTAGE_S:g} s"]


def _no_fault(stack: NaiveStack) -> list[str]:
    return [f"every chain message sent twice ({DUPLICATE_ENV}=1)"]


FAULTS: dict[str, Callable[[NaiveStack], list[str]]] = {
    "worker-killed": _kill_workers,
    "broker-restarted": _restart_broker,
    "duplicate-delivery": _no_fault,
}


def _wait_quiet(stack: NaiveStack, accepted: list[str], timeout_s: float) -> str:
    """Poll the database and the queues until quiet or stalled (see QUIET_S, STALL_S); what
    ended the wait, in words."""
    started = time.monotonic()
    moved = started
    last: object = None
    wanted = set(accepted)
    while True:
        now = time.monotonic()
        state = (_digest(stack), _queued(stack.broker.url))
        if state != last:
            last, moved = state, now
        final = all(status in faults_count.FINAL for oid, status in state[0][0] if oid in wanted)
        if final and state[1] == 0 and now - moved >= QUIET_S:
            return f"quiet after {now - started:.0f} s"
        if now - moved >= STALL_S:
            return f"nothing moved for {STALL_S:.0f} s ({now - started:.0f} s after the orders)"
        if now - started > timeout_s:
            return f"still moving after {timeout_s:.0f} s: counted as it stood"
        time.sleep(POLL_S)


def _digest(stack: NaiveStack) -> tuple[tuple[tuple[str, str], ...], tuple[Any, ...]]:
    """Every order's status, and everything else a step writes (payments, shipments, stock)."""
    with stack.database.connect() as conn:
        statuses = tuple(
            sorted(conn.execute(select(naive_tables.orders.c.id, naive_tables.orders.c.status)))
        )
        rest = (
            tuple(
                sorted(
                    conn.execute(select(naive_tables.payments.c.id, naive_tables.payments.c.status))
                )
            ),
            tuple(sorted(conn.execute(select(naive_tables.shipments.c.id)))),
            tuple(sorted(conn.execute(select(naive_tables.stock)))),
        )
    return tuple((str(a), str(b)) for a, b in statuses), rest


def _queued(url: str) -> int | None:
    """Messages waiting in the naive queues, with those taken but not acknowledged on Redis;
    None while the broker does not answer (it is away: not quiet)."""
    try:
        with Connection(url, connect_timeout=2) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            total = sum(_depth(channel, PREFIX + queue) for queue in QUEUES)
            unacked = getattr(channel, "unacked_key", None)
            if unacked is not None:  # Redis: the taken messages wait in a hash
                total += int(channel.client.hlen(unacked))
            return total
    except Exception:  # whatever the transport raises (kombu's, redis's, OSError): not there
        return None


def _depth(channel: Any, queue: str) -> int:
    from kombu.exceptions import ChannelError

    try:
        _name, messages, _consumers = channel.queue_declare(queue=queue, passive=True)
    except ChannelError:
        return 0  # never declared, or (Redis) empty: nothing waits there
    return int(messages)


def _purge(url: str) -> None:
    with Connection(url, connect_timeout=5) as conn:  # type: ignore[no-untyped-call]
        channel = conn.default_channel
        for queue in QUEUES:
            if _depth(channel, PREFIX + queue):
                channel.queue_purge(PREFIX + queue)


def _orders(stack: NaiveStack) -> list[OrderRow]:
    table = naive_tables.orders
    with stack.database.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.status, table.c["items"])).all()
    return [
        OrderRow(
            str(row.id),
            str(row.status),
            tuple((i["sku"], i["size"], int(i["quantity"])) for i in row.items),
        )
        for row in rows
    ]


def _stock(stack: NaiveStack) -> dict[tuple[str, str], StockRow]:
    table = naive_tables.stock
    with stack.database.connect() as conn:
        rows = conn.execute(select(table)).all()
    return {(r.sku, r.size): StockRow(r.available, r.reserved, r.sold) for r in rows}


def _charges(gateway_url: str) -> list[dict[str, Any]]:
    """The gateway's whole ledger (GET /v1/charges), as tests/support/invariants.py reads it."""
    response = httpx.get(f"{gateway_url}/v1/charges", timeout=REQUEST_TIMEOUT_S)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found
