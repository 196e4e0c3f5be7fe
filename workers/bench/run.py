"""A whole benchmark run: the system's phases, then each baseline's, the backlog, the report."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from workers.bench import measure, procstat, report
from workers.bench.baseline import BaselineStack
from workers.bench.baseline_app import PREFIX as CHAIN_NODES
from workers.bench.load import fetch_products, order_bodies, place_many
from workers.bench.naive import NaiveStack
from workers.bench.naive_app import PREFIX as NAIVE_NODES
from workers.bench.scenario import (
    Outcome,
    Peer,
    Phase,
    Progress,
    run_baseline,
    run_system,
    wait_shipped,
)
from workers.bench.stack import CHECKOUT_LIMIT_NOTE, Broker, SystemStack, scaled_procfile

# A run that stalls should fail in bounded time: a generous floor plus a second per order.
TIMEOUT_FLOOR_S = 120.0
DEFAULT_MESSAGES_PER_ORDER = 8
# Paced sends are scheduled open-loop: enough client threads that a slow answer delays no send.
PACED_MIN_CLIENTS = 32


@dataclass(frozen=True)
class Options:
    broker_url: str | None
    target_url: str | None
    orders: int
    rate: float | None
    burst: bool
    concurrency: int
    paced_fraction: float
    backlog_orders: int
    warmup: int
    out_dir: Path
    keep: bool
    # The system's worker processes per queue (issue #20's scaling runs); the baselines keep one.
    processes: int = 1

    @property
    def timeout_s(self) -> float:
        return TIMEOUT_FLOOR_S + self.orders

    def phase(self, name: str, rate: float | None = None, orders: int | None = None) -> Phase:
        clients = self.concurrency if rate is None else max(self.concurrency, PACED_MIN_CLIENTS)
        return Phase(name, orders or self.orders, clients, rate, self.timeout_s)


@dataclass
class Run:
    options: Options
    broker: Broker
    run_dir: Path
    latencies: dict[str, list[float]] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)

    def collect(self, name: str, outcome: Outcome) -> dict[str, Any]:
        self.latencies[name] = [done - placed for placed, done in outcome.moments]
        start = min((placed for placed, _ in outcome.moments), default=0.0)
        self.series[name] = measure.throughput_series((done for _, done in outcome.moments), start)
        summary = outcome.summary(self.options.orders)
        if summary["finished"] < self.options.orders:
            self.incomplete.append(f"{name}: {summary['finished']} of {self.options.orders}")
        return summary


def run_repeated(options: Options, runs: int) -> None:
    """Several whole runs, each with its own report; then the median of each, since one run on
    a shared machine can be moved by whatever else it does meanwhile."""
    results = [run_bench(options) for _ in range(runs)]
    if runs < 2:
        return
    summary = report.medians(results)
    path = options.out_dir / f"{results[-1]['started']}-median-of-{runs}.json"
    report.write_json(summary, path)
    click.echo(f"\nmedian of {runs} runs: {summary['median']}")
    click.echo(f"note: {CHECKOUT_LIMIT_NOTE}")
    click.echo(f"written: {path}")


def run_bench(options: Options) -> dict[str, Any]:
    """Run the system's phases, then the naive shop's and the chain's on the same broker (the
    naive shop on the system's databases too), and write the report."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the bar
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (options.out_dir / f"run-{stamp}").resolve()
    (run_dir / "logs").mkdir(parents=True)
    result: dict[str, Any] = {"machine": report.machine(), "started": stamp}
    broker = Broker.open(options.broker_url, run_dir)
    result["broker"] = report.redact(broker.url)
    run = Run(options, broker, run_dir)
    try:
        system = _system_side(run)
        messages = round(system.get("messages_per_order") or DEFAULT_MESSAGES_PER_ORDER)
        paced_rate = (system.get("paced") or {}).get("rate")
        baselines = {
            "naive": _naive_side(run, paced_rate),
            "chain": _chain_side(run, messages, paced_rate),
        }
    finally:
        broker.close()
    system["processes_per_queue"] = options.processes
    result.update(system=system, baselines=baselines, ratios=report.compare(system, baselines))
    json_path = options.out_dir / f"{stamp}.json"
    report.write_json(result, json_path)
    report.write_png(json_path.with_suffix(".png"), run.latencies, run.series)
    click.echo(report.table(result))
    for name, figures in result["ratios"].items():
        click.echo(f"ratios (system / {name}): {figures}")
    click.echo(f"note: {CHECKOUT_LIMIT_NOTE}")
    click.echo(f"written: {json_path} and {json_path.with_suffix('.png')}")
    if run.incomplete:
        # A benchmark whose orders do not all finish measures a broken shop: fail loudly.
        raise click.ClickException(
            f"not every order finished ({'; '.join(run.incomplete)}); logs in {run_dir}/logs"
        )
    if not options.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


@contextmanager
def _bar(label: str, orders: int) -> Iterator[Progress]:
    # Each order moves the bar twice: once accepted, once finished.
    with click.progressbar(length=2 * orders, label=label.ljust(16), show_eta=False) as bar:
        yield bar.update


def _system_side(run: Run) -> dict[str, Any]:
    options = run.options
    if options.target_url:
        stack = SystemStack(options.target_url.rstrip("/"), run.broker)
    else:
        procfile = None
        if options.processes > 1:
            procfile = scaled_procfile(run.run_dir, options.processes)
        stack = SystemStack.start(
            run.broker, run.run_dir / "system", run.run_dir / "logs/up.log", procfile=procfile
        )
    try:
        bodies = order_bodies(fetch_products(stack.url))

        def measure_phase(phase: Phase) -> Outcome:
            with _bar(f"system {phase.name}", phase.orders) as progress:
                return run_system(stack, run.broker.url, phase, bodies, progress)

        if options.warmup:
            measure_phase(options.phase("warmup", orders=options.warmup))
        burst = None
        paced_rate = options.rate
        if options.rate is None:
            burst = run.collect("system burst", measure_phase(options.phase("burst")))
            capacity = burst["orders_per_s"] or 1.0
            paced_rate = None if options.burst else round(capacity * options.paced_fraction, 2)
        paced = None
        if paced_rate is not None:
            paced = run.collect("system paced", measure_phase(options.phase("paced", paced_rate)))
            paced["rate"] = paced_rate
        headline = _headline(burst, paced)
        if options.backlog_orders:
            headline["backlog"] = _backlog(run, stack, bodies, headline.get("orders_per_s"))
        return headline
    finally:
        if not options.target_url:
            stack.stop()


def _naive_side(run: Run, paced_rate: float | None) -> dict[str, Any]:
    # On the system's data dir: the system's database (its own tables in it) and the gateway's
    # ledger, with the system's processes stopped.
    stack = NaiveStack.start(run.broker, run.run_dir / "system", run.run_dir / "logs")
    try:
        return _baseline_phases(run, "naive", stack, NAIVE_NODES, stack.catalogue(), paced_rate)
    finally:
        stack.stop()


def _chain_side(run: Run, messages: int, paced_rate: float | None) -> dict[str, Any]:
    stack = BaselineStack.start(
        run.broker, run.run_dir / "baseline", run.run_dir / "logs", messages
    )
    products = [{"sku": "BENCH", "sizes": [{"size": "42", "available": 1}]}]
    try:
        return _baseline_phases(run, "chain", stack, CHAIN_NODES, products, paced_rate)
    finally:
        stack.stop()


def _baseline_phases(
    run: Run,
    name: str,
    stack: Peer,
    nodes: str,
    products: list[dict[str, Any]],
    paced_rate: float | None,
) -> dict[str, Any]:
    """The baseline's warm-up, burst and paced phases, as the system had them."""
    options = run.options
    bodies = order_bodies(products)

    def measure_phase(phase: Phase) -> Outcome:
        with _bar(f"{name} {phase.name}", phase.orders) as progress:
            return run_baseline(stack, nodes, run.broker.url, phase, bodies, progress)

    if options.warmup:
        measure_phase(options.phase("warmup", orders=options.warmup))
    burst = None
    if options.rate is None:
        burst = run.collect(f"{name} burst", measure_phase(options.phase("burst")))
    paced = None
    if paced_rate is not None:
        # The same offered load as the system's paced phase: latency at the same rate.
        paced = run.collect(f"{name} paced", measure_phase(options.phase("paced", paced_rate)))
        paced["rate"] = paced_rate
    return _headline(burst, paced)


def _headline(burst: dict[str, Any] | None, paced: dict[str, Any] | None) -> dict[str, Any]:
    """Throughput and intake come from the burst, latency from the paced phase when both ran."""
    main = burst or paced or {}
    return {
        "orders_per_s": main.get("orders_per_s"),
        "intake_rps": main.get("intake_rps"),
        "latency_ms": (paced or main).get("latency_ms"),
        "latency_phase": "paced" if paced else "burst",
        "messages_per_order": main.get("messages_per_order"),
        "cpu_s_per_order": main.get("cpu_s_per_order"),
        "cpu_s_per_order_total": main.get("cpu_s_per_order_total"),
        "rss_mb": _max_rss(burst, paced),
        "burst": burst,
        "paced": paced,
    }


def _max_rss(*phases: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for phase in phases:
        for kind, mb in (phase or {}).get("rss_mb", {}).items():
            out[kind] = max(out.get(kind, 0.0), mb)
    return out


def _backlog(
    run: Run, stack: SystemStack, bodies: Iterator[dict[str, Any]], steady: float | None
) -> dict[str, Any]:
    """Broker away, orders accepted into the outbox, broker back: how fast does it drain?"""
    orders = run.options.backlog_orders
    usage = procstat.ProcessUsage(stack.pids)
    run.broker.take_away()
    usage.start()
    try:
        with _bar("system backlog", orders) as progress:
            placements = place_many(
                f"{stack.url}/api/orders",
                bodies,
                orders,
                concurrency=run.options.concurrency,
                on_done=lambda _: progress(1),
            )
            back = time.time()
            run.broker.bring_back()
            ids = [p.order_id for p in placements if p.order_id]
            moments = wait_shipped(stack, usage, ids, run.options.timeout_s + orders, progress)
    finally:
        usage.stop()
    last = max((done for _, done in moments), default=back)
    drain = measure.rate(len(moments), back, last)
    return {
        "orders": orders,
        "accepted": len(ids),
        "drained": len(moments),
        "drain_s": round(last - back, 2),
        "drain_orders_per_s": round(drain, 2),
        "vs_steady": measure.ratio(drain, steady),
        "rss_mb": usage.peak_rss_mb_by_kind(),
    }
