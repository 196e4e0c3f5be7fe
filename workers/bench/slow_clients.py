"""``shoeshop bench --slow-clients N``: does the shop keep answering while N clients are slow?

The whole shop starts; ``/healthz``, a product page and a checkout are timed in turn,
``REQUESTS`` of each, first idle, then while another process holds N slow connections: half
never finish their headers (gunicorn drops each after its header deadline, and the process opens
another at once), half send a checkout's body a byte a second (the web answers 408 after
SHOESHOP_READ_TIMEOUT, and the process opens another). Reported: p50/p99 of each kind idle and
meanwhile, and the p99 ratio (issue #17's target: 2 at most). Written to
``var/bench/slow-clients-<stamp>.json``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from workers.bench import measure, report
from workers.bench.load import fetch_products, order_bodies
from workers.bench.stack import CHECKOUT_LIMIT_NOTE, Broker, SystemStack

REQUESTS = 300  # of each kind, idle and again meanwhile
# Long enough for every slow connection to be open before the timing starts.
SETTLE_S = 3.0
DRIP_EVERY_S = 1.0
KINDS = ("healthz", "page", "checkout")


def run_slow_clients(
    count: int, broker_url: str | None, out_dir: Path, keep: bool
) -> dict[str, Any]:
    """Run the phase on a stack of its own; write and return the result."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (out_dir / f"slow-clients-run-{stamp}").resolve()
    (run_dir / "logs").mkdir(parents=True)
    broker = Broker.open(broker_url, run_dir)
    result: dict[str, Any] = {
        "started": stamp,
        "machine": report.machine(),
        "broker": report.redact(broker.url),
        "slow_clients": count,
        "requests_per_kind": REQUESTS,
    }
    try:
        stack = SystemStack.start(broker, run_dir / "system", run_dir / "logs/up.log")
        try:
            result.update(_phase(stack.url, count))
        finally:
            stack.stop()
    finally:
        broker.close()
    path = out_dir / f"slow-clients-{stamp}.json"
    report.write_json(result, path)
    for kind in KINDS:
        idle, busy = result["idle"][kind], result["with_slow_clients"][kind]
        click.echo(
            f"{kind:9} idle p50 {idle['p50']:.1f} / p99 {idle['p99']:.1f} ms; with {count} slow "
            f"clients p50 {busy['p50']:.1f} / p99 {busy['p99']:.1f} ms; p99 ratio "
            f"{result['p99_ratio'][kind]:.2f}"
        )
    click.echo(f"note: {CHECKOUT_LIMIT_NOTE}")
    click.echo(f"written: {path}")
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _phase(url: str, count: int) -> dict[str, Any]:
    products = fetch_products(url)
    sku = str(products[0]["sku"])
    bodies = order_bodies(products)
    with httpx.Client(base_url=url, timeout=30) as client:
        idle = _time(client, sku, [next(bodies) for _ in range(REQUESTS)])
        stop = multiprocessing.get_context("spawn").Event()
        holder = multiprocessing.get_context("spawn").Process(
            target=hold_slow_clients, args=(url, count, stop), daemon=True
        )
        holder.start()
        try:
            time.sleep(SETTLE_S)
            busy = _time(client, sku, [next(bodies) for _ in range(REQUESTS)])
        finally:
            stop.set()
            holder.join(timeout=30)
    summary: dict[str, Any] = {
        "idle": {kind: measure.summary_ms(idle[kind]) for kind in KINDS},
        "with_slow_clients": {kind: measure.summary_ms(busy[kind]) for kind in KINDS},
    }
    summary["p99_ratio"] = {
        kind: summary["with_slow_clients"][kind]["p99"] / summary["idle"][kind]["p99"]
        for kind in KINDS
    }
    return summary


def _time(client: httpx.Client, sku: str, bodies: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds each request took, by kind, one of each kind in turn."""
    took: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for body in bodies:
        for kind in KINDS:
            start = time.perf_counter()
            if kind == "checkout":
                response = client.post("/api/orders", json=body)
            else:
                response = client.get("/healthz" if kind == "healthz" else f"/products/{sku}")
            took[kind].append(time.perf_counter() - start)
            if response.status_code >= 400:
                raise click.ClickException(
                    f"{kind} answered {response.status_code}: {response.text}"
                )
    return took


def hold_slow_clients(url: str, count: int, stop: Any) -> None:
    """Keep ``count`` slow connections open until ``stop`` is set (a process of its own)."""
    address = urlsplit(url)
    place = (address.hostname or "127.0.0.1", address.port or 80)
    asyncio.run(_hold(place, count, stop))


async def _hold(place: tuple[str, int], count: int, stop: Any) -> None:
    tasks = [
        asyncio.create_task(_staller(place, stop) if index % 2 else _dripper(place, stop))
        for index in range(count)
    ]
    while not stop.is_set():
        await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _staller(place: tuple[str, int], stop: Any) -> None:
    """Headers that never end; a new connection whenever the server drops the last."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(*place)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n")
            await writer.drain()
            await reader.read()  # returns when the server closes the connection
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)


async def _dripper(place: tuple[str, int], stop: Any) -> None:
    """A checkout's body, a byte a second; a new connection once the server has answered."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(*place)
            writer.write(
                b"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n"
            )
            await writer.drain()
            while not reader.at_eof() and not stop.is_set():
                writer.write(b" ")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(4096), DRIP_EVERY_S):
                        break  # answered (408): the next connection
                except TimeoutError:
                    continue
            writer.close()
        except OSError:
            await asyncio.sleep(0.1)
