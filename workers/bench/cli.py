"""``shoeshop bench``: the shop, a naive Celery shop and a raw Celery chain under the same load."""

from __future__ import annotations

from pathlib import Path

import click

# Enough orders to open every connection pool and import every lazy module before measuring.
DEFAULT_WARMUP = 20
# Where every kind of run writes its JSON and PNG.
OUT = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/bench"),
    show_default=True,
)


@click.group(invoke_without_command=True)
@click.option(
    "--broker",
    "broker_url",
    default=None,
    help="Broker URL (redis://…, amqp://…); default: an embedded Redis of the run's own.",
)
@click.option(
    "--url", "target_url", default=None, help="Measure a shop already running there instead."
)
@click.option("--orders", default=1000, show_default=True, help="Orders per phase.")
@click.option("--rate", type=float, default=None, help="Only a paced phase, at this many orders/s.")
@click.option("--burst", is_flag=True, help="Only a burst phase: every order as fast as it goes.")
@click.option(
    "--workers",
    "concurrency",
    default=16,
    show_default=True,
    help="Concurrent HTTP clients placing orders.",
)
@click.option(
    "--paced-fraction",
    default=0.5,
    show_default=True,
    help="Pace the second phase at this fraction of the capacity the burst measured.",
)
@click.option(
    "--backlog",
    is_flag=True,
    help="Also stop the broker, accept orders, restart it, time the drain.",
)
@click.option("--backlog-orders", type=int, default=None, help="Backlog size (default: --orders).")
@click.option(
    "--warmup", default=DEFAULT_WARMUP, show_default=True, help="Unmeasured orders first."
)
@click.option(
    "--watchers",
    type=click.IntRange(min=1, max=18000),
    default=None,
    help="Only the live-tracking phase: this many streams open at once on orders in flight.",
)
@click.option(
    "--slow-clients",
    type=click.IntRange(min=1, max=5000),
    default=None,
    help="Only the slow-clients phase: health, page and checkout timed idle, then while this "
    "many connections are slow.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=8),
    default=1,
    show_default=True,
    help="The system's worker processes per queue (each worker line run this many times); the "
    "baselines keep one.",
)
@OUT
@click.option("--keep", is_flag=True, help="Keep the run's databases, broker data and logs.")
@click.option(
    "--runs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Repeat the whole run; with several, also report the median of each ratio.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    broker_url: str | None,
    target_url: str | None,
    orders: int,
    rate: float | None,
    burst: bool,
    concurrency: int,
    paced_fraction: float,
    backlog: bool,
    backlog_orders: int | None,
    warmup: int,
    watchers: int | None,
    slow_clients: int | None,
    processes: int,
    out_dir: Path,
    keep: bool,
    runs: int,
) -> None:
    """Place orders over HTTP at the shop, then at a naive Celery shop and at a raw Celery chain
    on the same broker; report all three and the system's ratio to each.

    `shoeshop bench growth` measures instead how reads, checkouts and storage fare as history
    grows; `shoeshop bench faults` runs the naive shop through the failure matrix's faults."""
    if ctx.invoked_subcommand is not None:
        return
    if watchers is not None:
        if target_url or backlog:
            raise click.UsageError("--watchers runs a phase of its own: no --url, no --backlog")
        from workers.bench.watchers import run_watchers

        run_watchers(watchers, broker_url, out_dir, keep)
        return
    if slow_clients is not None:
        if target_url or backlog:
            raise click.UsageError("--slow-clients runs a phase of its own: no --url, no --backlog")
        from workers.bench.slow_clients import run_slow_clients

        run_slow_clients(slow_clients, broker_url, out_dir, keep)
        return
    if rate is not None and burst:
        raise click.UsageError("--rate and --burst exclude each other")
    if target_url and not broker_url:
        raise click.UsageError("--url needs --broker: the baselines run on the shop's broker")
    if backlog and (broker_url or target_url):
        raise click.UsageError("--backlog needs the embedded broker, which the bench can stop")
    if target_url and processes != 1:
        raise click.UsageError("--processes starts the system's workers: not with --url")
    from workers.bench.run import Options, run_repeated  # heavy imports only when benchmarking

    run_repeated(
        Options(
            broker_url=broker_url,
            target_url=target_url,
            orders=orders,
            rate=rate,
            burst=burst,
            concurrency=concurrency,
            paced_fraction=paced_fraction,
            backlog_orders=(backlog_orders or orders) if backlog else 0,
            warmup=warmup,
            out_dir=out_dir,
            keep=keep,
            processes=processes,
        ),
        runs,
    )


@bench.command()
@click.option(
    "--to",
    "to",
    required=True,
    type=click.IntRange(min=1000),
    help="Orders stored at the last size (sizes: 1,000, 10,000, … below it, then it).",
)
@click.option(
    "--database-url",
    default=None,
    help="A PostgreSQL server: the run creates a database of its own there and drops it "
    "afterwards (default: SQLite files).",
)
@click.option(
    "--requests",
    default=2000,
    show_default=True,
    type=click.IntRange(min=100),
    help="Timed requests of each kind per round.",
)
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--clients", default=2, show_default=True, type=click.IntRange(min=1, max=64))
@click.option(
    "--per-day",
    default=2880,
    show_default=True,
    type=click.IntRange(min=1),
    help="Orders a day the seeded history was taken at (2,880: a million in under a year).",
)
@OUT
@click.option("--keep", is_flag=True, help="Keep the run's databases and logs.")
def growth(
    to: int,
    database_url: str | None,
    requests: int,
    rounds: int,
    clients: int,
    per_day: int,
    out_dir: Path,
    keep: bool,
) -> None:
    """Seed history up to --to orders and measure, at each size, order reads, the tracking
    stream's first frame, checkouts and bytes on disk per order."""
    if database_url is not None and not database_url.startswith(("postgresql", "postgres://")):
        raise click.BadParameter("a PostgreSQL URL (postgresql://…)", param_hint="--database-url")
    from workers.bench.growth import GrowthOptions, run_growth

    run_growth(
        GrowthOptions(
            to=to,
            database_url=database_url,
            requests=requests,
            rounds=rounds,
            clients=clients,
            per_day=per_day,
            out_dir=out_dir,
            keep=keep,
        )
    )


@bench.command()
@click.option(
    "--orders",
    default=100,
    show_default=True,
    type=click.IntRange(min=1, max=1000),
    help="Orders per scenario.",
)
@click.option(
    "--rate",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Orders placed per second, at a steady pace.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["worker-killed", "broker-restarted", "duplicate-delivery"]),
    help="Only these scenarios (repeatable; default: all three).",
)
@OUT
@click.option("--keep", is_flag=True, help="Keep each scenario's databases, broker data and logs.")
@click.pass_context
def faults(
    ctx: click.Context,
    orders: int,
    rate: float,
    scenarios: tuple[str, ...],
    out_dir: Path,
    keep: bool,
) -> None:
    """Run the naive shop through the failure matrix's worker SIGKILL, broker restart and
    duplicate-delivery faults, each on a fresh stack, and count its lost orders, double charges
    and stock drift. The broker is `shoeshop bench --broker` (default: an embedded Redis;
    broker-restarted runs on that one only)."""
    from workers.bench.faults import SCENARIOS, FaultsOptions, run_faults

    broker_url = ctx.parent.params.get("broker_url") if ctx.parent else None
    run_faults(
        FaultsOptions(
            broker_url=broker_url,
            orders=orders,
            rate=rate,
            scenarios=tuple(s for s in SCENARIOS if s in scenarios) if scenarios else SCENARIOS,
            out_dir=out_dir,
            keep=keep,
        )
    )
