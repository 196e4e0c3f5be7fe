"""The arithmetic of a benchmark: percentiles, rates, ratios, and latencies from event times."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from workers.messaging.contracts import wire_type

PLACED = wire_type("order.placed")
STATUS_CHANGED = wire_type("order.status_changed")
PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between closest ranks (numpy's way)."""
    if not values:
        raise ValueError("a percentile of no values is undefined")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values present; None when there are none."""
    present = [value for value in values if value is not None]
    return round(percentile(present, 50.0), 3) if present else None


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of durations given in seconds, in milliseconds (rounded to 0.1)."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    out = {name: percentile(seconds, q) * 1000 for name, q in PERCENTILES.items()}
    out["max"] = max(seconds) * 1000
    return {name: round(value, 1) for name, value in out.items()}


def rate(count: int, start: float, end: float) -> float:
    """Events per second over [start, end]; zero when the window is empty."""
    window = end - start
    return count / window if window > 0 else 0.0


def ratio(system: float | None, baseline: float | None) -> float | None:
    """system / baseline, or None when either is missing or the baseline is zero."""
    if system is None or baseline is None or baseline == 0:
        return None
    return round(system / baseline, 3)


def throughput_series(
    finished_at: Iterable[float], start: float, bucket_s: float = 1.0
) -> list[tuple[float, float]]:
    """(seconds since start, completions per second) per bucket, empty buckets included."""
    times = sorted(t - start for t in finished_at)
    if not times:
        return []
    buckets = [0] * (int(max(times[-1], 0) // bucket_s) + 1)
    for moment in times:
        buckets[max(0, int(moment // bucket_s))] += 1
    return [(index * bucket_s, count / bucket_s) for index, count in enumerate(buckets)]


def placed_and_shipped(view: Mapping[str, Any]) -> tuple[float, float] | None:
    """(placed, shipped) as epoch seconds from an order's own timeline, or None if not shipped.

    The shipped moment is the time of the last ``order.status_changed`` the order emitted: status
    only moves forward and SHIPPED is the last status a shipped order announces.
    """
    if view.get("status") != "SHIPPED":
        return None
    placed: float | None = None
    shipped: float | None = None
    for entry in view.get("timeline", []):
        moment = datetime.fromisoformat(str(entry["time"])).timestamp()
        if entry["type"] == PLACED:
            placed = moment if placed is None else min(placed, moment)
        elif entry["type"] == STATUS_CHANGED:
            shipped = moment if shipped is None else max(shipped, moment)
    if placed is None or shipped is None:
        return None
    return placed, shipped


def per_order(totals: Mapping[str, float], orders: int) -> dict[str, float]:
    """Each total divided by the number of orders, rounded for a report."""
    if orders <= 0:
        return {}
    return {name: round(value / orders, 4) for name, value in totals.items()}
