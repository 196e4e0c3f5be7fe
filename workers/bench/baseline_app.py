"""The baseline: a raw Celery chain of no-op tasks, on its own app, queues and exchange.

It keeps the system's transport contract (JSON, late acks, prefetch 1, publisher confirms, task
events) and drops everything the shop adds on top: outbox, inbox, event store, databases, HTTP.
"""

from __future__ import annotations

import os
import time
import uuid

from celery import chain

from workers.bench.transport import baseline_app, quiet_task_lines

QUEUES = ("shop", "orders", "payments", "shipping")
PREFIX = "bench_"
# The saga's critical path to SHIPPED: orders → payments → orders → shipping → orders.
CRITICAL_PATH = ("orders", "payments", "orders", "shipping", "orders")
# The rest of an order's messages are side branches the shop worker consumes.
SIDE_QUEUE = "shop"
RECORDS_ENV = "SHOESHOP_BENCH_RECORDS"

app = baseline_app(
    "shoeshop-bench-baseline",
    "shoeshop-bench",
    [PREFIX + queue for queue in QUEUES],
    PREFIX + SIDE_QUEUE,
)
quiet_task_lines()


def hop_queues(messages_per_order: int) -> list[str]:
    """The queue of each hop: the critical path first, then the side messages."""
    path = list(CRITICAL_PATH[:messages_per_order])
    path += [SIDE_QUEUE] * (messages_per_order - len(path))
    return [PREFIX + queue for queue in path]


def _record(chain_id: str, mark: str, started: float) -> None:
    directory = os.environ.get(RECORDS_ENV)
    if not directory:
        return
    line = f"{chain_id} {mark} {started:.6f} {time.time():.6f}\n".encode()
    # O_APPEND writes this small are atomic: threads and processes can share the file.
    fd = os.open(
        os.path.join(directory, f"records-{os.getpid()}.txt"),
        os.O_WRONLY | os.O_APPEND | os.O_CREAT,
        0o644,
    )
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.task(name="bench.hop")  # type: ignore[untyped-decorator]
def hop(chain_id: str, started: float, marks: list[str]) -> None:
    """Does nothing, except noting when the chain reached its SHIPPED point and its end."""
    for mark in marks:
        _record(chain_id, mark, started)


def start_chain(messages_per_order: int, chain_id: str | None = None) -> str:
    """Send the first message of one order's chain; Celery sends each next one from the worker."""
    chain_id = chain_id or str(uuid.uuid4())
    started = time.time()
    queues = hop_queues(messages_per_order)
    shipped_at = min(len(CRITICAL_PATH), len(queues)) - 1
    steps = []
    for index, queue in enumerate(queues):
        marks = ["shipped"] if index == shipped_at else []
        if index == len(queues) - 1:
            marks.append("done")
        steps.append(hop.si(chain_id, started, marks).set(queue=queue))
    chain(*steps).apply_async()
    return chain_id
