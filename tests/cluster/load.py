"""Steady offered load from the client host: checkouts at a fixed rate (open loop) until SIGTERM,
each written as a JSON line as it is answered.

    python -m tests.cluster.load URL RATE OUTPUT

A checkout that gets no answer or a 5xx is tried again with the same ``Idempotency-Key``, as a
customer's browser would, at most RETRIES times; the line says how it ended.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import httpx

from tests.chaos.flow import SIZES, SKUS
from tests.support.shop import order_body

RETRIES = 5
RETRY_WAIT_S = 1.0


def checkout(client: httpx.Client, url: str, index: int) -> dict[str, Any]:
    body = order_body(
        sku=SKUS[index % len(SKUS)], size=SIZES[index % len(SIZES)], quantity=1 + index % 2
    )
    key = str(uuid.uuid4())
    sent = time.time()
    line: dict[str, Any] = {"index": index, "sent": sent}
    attempt = 0
    while attempt < RETRIES:
        attempt += 1
        try:
            response = client.post(
                f"{url}/api/orders", json=body, headers={"Idempotency-Key": key}, timeout=30
            )
        except httpx.HTTPError as exc:
            line.update(status=None, error=f"{type(exc).__name__}: {exc}"[:200])
        else:
            line.update(status=response.status_code)
            if response.status_code == 202:
                line.update(id=response.json()["id"], error=None)
            else:
                line.update(error=response.text[:200])
            if response.status_code < 500:
                break
        time.sleep(RETRY_WAIT_S)
    line.update(attempts=attempt, answered=time.time())
    return line


def offer(url: str, rate: float, out: TextIO, stop: threading.Event) -> None:
    lock = threading.Lock()
    started = time.monotonic()

    def one(client: httpx.Client, index: int) -> None:
        line = checkout(client, url, index)
        with lock:
            out.write(json.dumps(line) + "\n")
            out.flush()

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    with httpx.Client(limits=limits) as client, ThreadPoolExecutor(max_workers=64) as pool:
        index = 0
        while not stop.is_set():
            due = started + index / rate
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            pool.submit(one, client, index)
            index += 1


def main(argv: list[str]) -> None:
    url, rate, output = argv
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Path(output).open("a") as out:
        offer(url, float(rate), out, stop)


if __name__ == "__main__":
    main(sys.argv[1:])
