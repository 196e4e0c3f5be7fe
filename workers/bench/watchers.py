"""``shoeshop bench --watchers N``: N tracking streams open at once on orders in flight.

The whole shop starts with a packing delay long enough that every stream is open before the first
parcel leaves. Orders are placed at ``ORDER_RATE`` a second, and once each is accepted
``WATCHERS_PER_ORDER`` streams open on it, one after another until the next order is placed (``GET
/orders/<id>/events``, HTTP/1.0, from one asyncio loop). Each stream reads its first frame, then
waits: the order is paid, packed, and ships, and the shop's worker pushes each change (shop.live). A
pushed frame carries, as an SSE comment, when the shop committed the change; its push delay is its
arrival minus that moment (one machine, one clock). Meanwhile a process of its own requests the
catalogue and a product page at ``PAGE_RATE`` a second, as it did before any stream opened (the idle
figure).

Reported: streams refused (any answer but 200, or no connection) and missed (never got their
order's SHIPPED frame), push delay p50/p99, the web's CPU over the phase and its RSS before and
with every stream open (per stream), and page p50/p99 idle and meanwhile. Written to
``var/bench/watchers-<stamp>.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx

from workers.bench import measure, procstat, report
from workers.bench.load import fetch_products, order_bodies
from workers.bench.stack import CHECKOUT_LIMIT_NOTE, Broker, SystemStack

WATCHERS_PER_ORDER = 50
ORDER_RATE = 5.0
PAGE_RATE = 20.0
IDLE_PAGES_S = 15.0
# Parcels wait this long past the last order's placing, so every stream is open before one leaves.
PACKING_MARGIN_S = 20.0
FINISH_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 30.0
PAGER_TIMEOUT_S = IDLE_PAGES_S + 60.0


@dataclass
class Tally:
    opened: int = 0
    refused: int = 0
    shipped: int = 0
    delays_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_watchers(
    watchers: int, broker_url: str | None, out_dir: Path, keep: bool
) -> dict[str, Any]:
    """Run the phase on a stack of its own; write and return the result. Raises
    click.ClickException when a stream is refused or misses its order's last change."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _raise_open_files(watchers)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (out_dir / f"watchers-run-{stamp}").resolve()
    (run_dir / "logs").mkdir(parents=True)
    orders = math.ceil(watchers / WATCHERS_PER_ORDER)
    packing_s = orders / ORDER_RATE + PACKING_MARGIN_S
    broker = Broker.open(broker_url, run_dir)
    result: dict[str, Any] = {
        "started": stamp,
        "machine": report.machine(),
        "broker": report.redact(broker.url),
        "watchers": watchers,
        "orders": orders,
        "watchers_per_order": WATCHERS_PER_ORDER,
        "order_rate": ORDER_RATE,
        "packing_delay_s": packing_s,
    }
    try:
        stack = SystemStack.start(
            broker,
            run_dir / "system",
            run_dir / "logs/up.log",
            env={"SHOESHOP_PACKING_DELAY": str(packing_s)},
        )
        try:
            result.update(_phase(stack, watchers, orders))
        finally:
            stack.stop()
    finally:
        broker.close()
    path = out_dir / f"watchers-{stamp}.json"
    report.write_json(result, path)
    click.echo(summary(result))
    click.echo(f"note: {CHECKOUT_LIMIT_NOTE}")
    click.echo(f"written: {path}")
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    if result["refused"] or result["missed"]:
        raise click.ClickException(
            f"{result['refused']} stream(s) refused, {result['missed']} missed their order's "
            f"last change; logs in {run_dir}/logs"
        )
    return result


def _raise_open_files(watchers: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = watchers + 1000
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise click.ClickException(
                f"{watchers} streams need {needed} open files; this shell allows {hard} "
                "(raise it with `ulimit -n`)"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _phase(stack: SystemStack, watchers: int, orders: int) -> dict[str, Any]:
    def web_pids() -> dict[int, str]:
        return {pid: kind for pid, kind in stack.pids().items() if kind == "web"}

    idle = Pager(stack.url, IDLE_PAGES_S).durations()
    rss_before = _rss_mb(web_pids())
    usage = procstat.ProcessUsage(web_pids)
    usage.start()
    pager = Pager(stack.url, None)
    started = time.monotonic()
    try:
        tally, rss_open = asyncio.run(_watch_all(stack.url, watchers, orders, web_pids))
    finally:
        pages = pager.durations()
        usage.stop()
    seconds = time.monotonic() - started
    cpu = usage.cpu_by_kind().get("web", 0.0)
    idle_ms, during_ms = measure.summary_ms(idle), measure.summary_ms(pages)
    return {
        "opened": tally.opened,
        "refused": tally.refused,
        "missed": watchers - tally.refused - tally.shipped,
        "push_delay_ms": measure.summary_ms(tally.delays_s),
        "pushed_frames": len(tally.delays_s),
        "failures": tally.failures[:20],
        "phase_s": round(seconds, 1),
        "web": {
            "cpu_s": cpu,
            "cpu_cores": round(cpu / seconds, 2) if seconds else None,
            "rss_mb_before": rss_before,
            "rss_mb_all_streams_open": rss_open,
            "rss_kb_per_stream": round((rss_open - rss_before) * 1024 / watchers, 1),
            "peak_rss_mb": usage.peak_rss_mb_by_kind().get("web"),
        },
        "pages_ms": {"idle": idle_ms, "during": during_ms},
        "page_p99_vs_idle": measure.ratio(during_ms["p99"], idle_ms["p99"]),
    }


def _rss_mb(pids: dict[int, str]) -> float:
    """The web processes' current RSS together, in MB."""
    total = 0
    for pid in pids:
        try:
            total += procstat.rss_kb(pid)[0]
        except OSError:
            continue
    return round(total / 1024, 1)


class Pager:
    """Page requests from a process of their own (``_pages``), so that the streams' client in
    this process, busy with thousands of sockets, adds nothing to their latency. For ``seconds``,
    or until ``durations`` is called."""

    def __init__(self, url: str, seconds: float | None) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_pages_process, args=(url, seconds, self._stop, send), daemon=True
        )
        self._process.start()
        self._timed = seconds is not None

    def durations(self) -> list[float]:
        """Every page's seconds: after the timed run, or stopping the open-ended one now."""
        if not self._timed:
            self._stop.set()
        if not self._receive.poll(PAGER_TIMEOUT_S):
            raise click.ClickException("the page requests' process ended without a result")
        took: list[float] = self._receive.recv()
        self._process.join()
        return took


def _pages_process(url: str, seconds: float | None, stop: Any, send: Any) -> None:
    send.send(_pages(url, seconds=seconds, stop=stop))


def _pages(url: str, *, seconds: float | None = None, stop: Any = None) -> list[float]:
    """Request the catalogue and a product page in turn at PAGE_RATE a second; their durations."""
    paths = ["/", f"/products/{fetch_products(url)[0]['sku']}"]
    took: list[float] = []
    start = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for index in range(1_000_000):
            due = start + index / PAGE_RATE
            if seconds is not None and due - start >= seconds:
                break
            if stop is not None and stop.is_set():
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            response = client.get(url + paths[index % len(paths)])
            if response.status_code == 200:
                took.append(time.perf_counter() - sent)
    return took


async def _watch_all(
    url: str, watchers: int, orders: int, web_pids: Callable[[], dict[int, str]]
) -> tuple[Tally, float]:
    tally = Tally()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    bodies = order_bodies(fetch_products(url))
    tasks: list[asyncio.Task[None]] = []
    deadline = time.time() + orders / ORDER_RATE + PACKING_MARGIN_S + FINISH_TIMEOUT_S
    start = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        for index in range(orders):
            await asyncio.sleep(max(0.0, start + index / ORDER_RATE - time.monotonic()))
            response = await client.post(f"{url}/api/orders", json=next(bodies))
            if response.status_code != 202:
                raise click.ClickException(f"a checkout failed: {response.status_code}")
            order_id = response.json()["id"]
            count = min(WATCHERS_PER_ORDER, watchers - index * WATCHERS_PER_ORDER)
            # Customers arrive one by one, not fifty at the same instant: an order's streams
            # open evenly until the next order is placed (250 a second at the defaults).
            gap = 1 / ORDER_RATE / WATCHERS_PER_ORDER
            for number in range(count):
                tasks.append(
                    asyncio.create_task(_watch(host, port, order_id, tally, deadline, number * gap))
                )
    # Every stream open (or refused) before the first parcel leaves: the web's memory now.
    while tally.opened + tally.refused < watchers and time.time() < deadline:
        await asyncio.sleep(0.2)
    rss_open = _rss_mb(web_pids())
    click.echo(f"{tally.opened} streams open, {tally.refused} refused; web RSS {rss_open} MB")
    await asyncio.gather(*tasks)
    return tally, rss_open


async def _watch(
    host: str, port: int, order_id: str, tally: Tally, deadline: float, after_s: float
) -> None:
    await asyncio.sleep(after_s)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        tally.refused += 1
        tally.failures.append(f"connect: {exc}")
        return
    try:
        writer.write(f"GET /orders/{order_id}/events HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        status = (await reader.readline()).split()
        if len(status) < 2 or status[1] != b"200":
            tally.refused += 1
            tally.failures.append(f"status: {b' '.join(status).decode(errors='replace')}")
            return
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        await _frames(reader, tally, deadline)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        tally.failures.append(f"stream: {exc!r}")
    finally:
        writer.close()


async def _frames(reader: asyncio.StreamReader, tally: Tally, deadline: float) -> None:
    """Read frames until the SHIPPED one: the first counts the stream as open, each pushed one
    (with its ``: committed`` comment) gives a push delay."""
    # One timeout around the whole read, not a wait_for per line: wait_for wraps each read in a
    # task of its own, CPU this client takes from the shop on the same two cores (customers'
    # browsers are on machines of their own).
    loop = asyncio.get_running_loop()
    async with asyncio.timeout_at(loop.time() + max(0.1, deadline - time.time())):
        await _read_frames(reader, tally)


async def _read_frames(reader: asyncio.StreamReader, tally: Tally) -> None:
    committed: float | None = None
    first = True
    while True:
        line = await reader.readline()
        if not line:
            return  # the server ended the stream
        arrived = time.time()
        if line.startswith(b": committed "):
            committed = float(line.split()[2])
        elif line.startswith(b"data: "):
            if first:
                tally.opened += 1
                first = False
            if committed is not None:
                tally.delays_s.append(arrived - committed)
                committed = None
            if json.loads(line[6:])["status"] in ("SHIPPED", "CANCELLED"):
                tally.shipped += 1
                return


def summary(result: dict[str, Any]) -> str:
    web = result["web"]
    pages = result["pages_ms"]
    return "\n".join(
        [
            "| watchers | refused | missed | push p50 / p99 ms | web CPU cores | web RSS MB "
            "(before → open) | KB/stream | page p99 idle → meanwhile |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {result['watchers']:,} | {result['refused']} | {result['missed']} "
            f"| {result['push_delay_ms']['p50']} / {result['push_delay_ms']['p99']} "
            f"| {web['cpu_cores']} | {web['rss_mb_before']} → {web['rss_mb_all_streams_open']} "
            f"| {web['rss_kb_per_stream']} | {pages['idle']['p99']} → {pages['during']['p99']} |",
        ]
    )
