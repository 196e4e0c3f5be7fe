"""What a cluster scenario measured: shipped orders per second, the recovery after its fault, and
the results as a table and as var/chaos/cluster.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import text

from tests.support.invariants import Outcome, component_engine

RESULTS = Path(__file__).resolve().parents[2] / "var" / "chaos" / "cluster.json"
# The level a fault is measured against: shipped orders per second over this long before it.
LEVEL_WINDOW_S = 10
# A dip counts only when it starts this soon after the fault (later ones are not its doing).
DIP_WITHIN_S = 15
# Back means this many 1-second windows in a row at half the level or more.
SUSTAINED = 3


class ScenarioResult(TypedDict):
    name: str
    orders: int
    shipped: int
    cancelled: int
    parked: int
    lost: int
    charged_twice: int
    stock_conserved: bool
    recovery_s: float | None


def dispatch_times(env: dict[str, str]) -> list[float]:
    """When each parcel left (shipping's ``dispatched_at``), as Unix times."""
    with component_engine(env, "shipping").connect() as conn:
        rows = conn.execute(
            text("SELECT dispatched_at FROM shipments WHERE dispatched_at IS NOT NULL")
        ).all()
    return sorted(row.dispatched_at.timestamp() for row in rows)


def per_second(times: list[float], start: float, end: float) -> list[int]:
    """How many of ``times`` fall in each 1-second window from ``start`` up to ``end``."""
    counts = Counter(int(t - start) for t in times if start <= t < end)
    return [counts[k] for k in range(max(0, int(end - start)))]


def recovery_s(times: list[float], fault: float, end: float) -> float | None:
    """Seconds from ``fault`` until shipped orders per second are back to half the level of the
    LEVEL_WINDOW_S before it: the end of the first 1-second window, after a window below half
    that starts within DIP_WITHIN_S of the fault, that begins SUSTAINED windows in a row at half
    or more (one lucky second is not a recovery). 0 when no window after the fault fell below
    half; None when none came back before ``end``."""
    before = per_second(times, fault - LEVEL_WINDOW_S, fault)
    half = sum(before) / LEVEL_WINDOW_S / 2
    after = per_second(times, fault, end)
    dip = next((k for k, n in enumerate(after[:DIP_WITHIN_S]) if n < half), None)
    if dip is None:
        return 0.0
    back = next(
        (
            k
            for k in range(dip + 1, len(after) - SUSTAINED + 1)
            if all(n >= half for n in after[k : k + SUSTAINED])
        ),
        None,
    )
    return None if back is None else float(back + 1)


def result(name: str, outcome: Outcome, recovery: float | None) -> ScenarioResult:
    return {
        "name": name,
        "orders": outcome.placed,
        "shipped": outcome.shipped,
        "cancelled": outcome.cancelled,
        "parked": outcome.parked,
        "lost": outcome.lost,
        "charged_twice": outcome.charged_twice,
        "stock_conserved": not any(problem.startswith("stock") for problem in outcome.problems),
        "recovery_s": recovery,
    }


COLUMNS = (
    "orders", "shipped", "cancelled", "parked", "lost", "charged_twice", "stock_conserved",
    "recovery_s",
)  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, for the terminal and for docs/reliability.md."""
    header = ["scenario", *COLUMNS, "result", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        cells = [row["name"], *(_cell(row["result"][c]) for c in COLUMNS)]
        lines.append("| " + " | ".join([*cells, row["verdict"], f"{row['seconds']:.0f}"]) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


def write(rows: list[dict[str, Any]], path: Path = RESULTS) -> Path:
    """``{"scenarios": [...]}`` with the issue's keys; what else was seen under ``details``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "scenarios": [row["result"] for row in rows],
        "details": {
            row["name"]: {"result": row["verdict"], "seconds": round(row["seconds"], 1),
                          "notes": row["notes"], "problems": row["problems"][:50]}
            for row in rows
        },
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
