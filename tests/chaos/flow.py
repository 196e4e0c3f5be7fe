"""Driving a chaos scenario: place orders over HTTP, wait for quiet, check, record the outcome."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import select

from tests.chaos.conftest import CONSUMERS, WORKERS, Chaos, component_of
from tests.support.invariants import Outcome, component_engine, observe, wait_until_settled
from tests.support.processes import ROOT
from tests.support.shop import GOOD_CARD, order_body
from workers.messaging.chaos import countdowns
from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import recipients
from workers.messaging.tables import outbox

SKUS = ("TRL-001", "RUN-002", "CAS-001", "BOT-001", "CRT-002", "HIK-001")
SIZES = ("38", "39", "40", "41", "42", "43", "44", "45")


def place(chaos: Chaos, index: int, *, card: str = GOOD_CARD) -> str:
    """One checkout of a varied order; it must be accepted (202)."""
    body = order_body(
        card=card,
        sku=SKUS[index % len(SKUS)],
        size=SIZES[index % len(SIZES)],
        quantity=1 + index % 2,
    )
    response = httpx.post(f"{chaos.shop.url}/api/orders", json=body, timeout=60)
    assert response.status_code == 202, f"checkout {index}: {response.status_code} {response.text}"
    return str(response.json()["id"])


def place_many(chaos: Chaos, count: int, *, card: str = GOOD_CARD, start: int = 0) -> list[str]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda i: place(chaos, i, card=card), range(start, start + count)))


def settle(
    chaos: Chaos,
    order_ids: list[str],
    *,
    timeout_s: float = 120,
    initial: dict[tuple[str, str], int] | None = None,
) -> Outcome:
    """Wait for quiet, then count and check; the outcome is recorded for the matrix."""
    restarted: list[str] = []
    found = wait_until_settled(
        chaos.shop, order_ids, timeout_s, give_up=_supervise(chaos, restarted)
    )
    outcome = observe(chaos.shop, found, initial=initial)
    # A worker that died on its own was restarted, as the supervisor a deployment runs workers
    # under would (docs/reliability.md); it is noted. Any other process dying is a problem.
    outcome.notes.extend(restarted)
    for name, code in chaos.processes.exited().items():
        outcome.problems.append(f"{name} exited by itself with {code}: {_why(chaos, name)}")
    chaos.outcome = outcome
    return outcome


def _why(chaos: Chaos, name: str) -> str:
    lines = chaos.processes.log(name).read_text(errors="replace").splitlines()
    return " ".join([line for line in lines if "CRITICAL" in line][-1:] or lines[-1:])[:300]


def _supervise(chaos: Chaos, restarted: list[str], grace_s: float = 10.0) -> Callable[[], bool]:
    """Restart Celery workers that exit by themselves; give up once another process has been
    dead for ``grace_s`` (the rest can still drain meanwhile)."""
    noticed: list[float] = []

    def check() -> bool:
        for name, code in chaos.processes.exited().items():
            if component_of(name) in CONSUMERS:
                restarted.append(
                    f"{name} exited by itself ({code}: {_why(chaos, name)[:120]}) and was restarted"
                )
                chaos.processes.restart(name)
            elif not noticed:
                noticed.append(time.monotonic())
        return bool(noticed) and time.monotonic() - noticed[0] > grace_s

    return check


def assert_sound(outcome: Outcome) -> None:
    assert outcome.problems == [], "\n".join(outcome.problems[:20])


def inject(chaos: Chaos, *args: str) -> str:
    """Run tests/chaos/inject.py in the shop's own environment (its broker, its databases)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.chaos.inject", *args],
        env=chaos.processes.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def log_lines(chaos: Chaos, needle: str, names: tuple[str, ...] = WORKERS) -> int:
    """How many lines of the given processes' logs contain ``needle``."""
    total = 0
    for name in names:
        path: Path = chaos.processes.log(name)
        if path.exists():
            total += sum(needle in line for line in path.read_text(errors="replace").splitlines())
    return total


_DONE = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] succeeded in")


def consumers(chaos: Chaos) -> tuple[str, ...]:
    """Every process of the scenario that consumes a queue: CONSUMERS and their copies."""
    return tuple(name for name in chaos.processes.commands if component_of(name) in CONSUMERS)


def completions(chaos: Chaos) -> Counter[tuple[str, str]]:
    """How often each (task name, task id) finished, from the workers' own logs."""
    done: Counter[tuple[str, str]] = Counter()
    for name in consumers(chaos):
        path = chaos.processes.log(name)
        if path.exists():
            done.update(_DONE.findall(path.read_text(errors="replace")))
    return done


def reordering_plan(chaos: Chaos, seed: int) -> Counter[str]:
    """What the reordering hook did to the events the outboxes hold, read back from their ids
    (workers.messaging.chaos decides from the seed, the event's id and the subscriber only):
    ``sends`` (one per event and subscriber it goes to), those sent ``twice``, copies ``held
    back``."""
    plan: Counter[str] = Counter()
    for component in WORKERS:  # the components that emit events
        with component_engine(chaos.shop.env, component).connect() as conn:
            bodies = conn.execute(select(outbox.c.event)).scalars().all()
        for body in bodies:
            event = Envelope.from_dict(body)
            for task in recipients(event):
                delays = countdowns(seed, event.id, task)
                plan["sends"] += 1
                plan["twice"] += len(delays) == 2
                plan["held back"] += sum(delay > 0 for delay in delays)
    return plan
