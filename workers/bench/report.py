"""The results of a run: machine facts, the JSON file, the PNG beside it, the printed table."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workers.bench import measure


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": round(ram_gb, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def redact(url: str) -> str:
    """The broker URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def ratios(system: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """system / baseline for the three targets of the issue."""
    return {
        "throughput": measure.ratio(system.get("orders_per_s"), baseline.get("orders_per_s")),
        "p99_latency": measure.ratio(
            system.get("latency_ms", {}).get("p99"), baseline.get("latency_ms", {}).get("p99")
        ),
        "intake": measure.ratio(system.get("intake_rps"), baseline.get("intake_rps")),
    }


def medians(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The median of each ratio and headline figure over several runs, with every run's own."""
    figures: dict[str, list[float | None]] = {
        "throughput": [r["ratios"].get("throughput") for r in results],
        "p99_latency": [r["ratios"].get("p99_latency") for r in results],
        "intake": [r["ratios"].get("intake") for r in results],
        "backlog_drain_vs_steady": [
            (r["system"].get("backlog") or {}).get("vs_steady") for r in results
        ],
        "system_orders_per_s": [r["system"].get("orders_per_s") for r in results],
        "baseline_orders_per_s": [r["baseline"].get("orders_per_s") for r in results],
        "largest_worker_rss_mb": [_largest_worker_rss(r["system"]) for r in results],
    }
    return {
        "runs": [r["started"] for r in results],
        "median": {name: measure.median(values) for name, values in figures.items()},
        "each": figures,
    }


WORKER_KINDS = ("shop", "orders", "payments", "shipping")


def _largest_worker_rss(side: Mapping[str, Any]) -> float | None:
    sizes = [mb for kind, mb in side.get("rss_mb", {}).items() if kind in WORKER_KINDS]
    return max(sizes) if sizes else None


def write_json(result: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")


def write_png(
    path: Path,
    latencies_s: Mapping[str, Sequence[float]],
    series: Mapping[str, Sequence[tuple[float, float]]],
) -> None:
    """Latency distribution (left) and completions per second over time (right), per side."""
    import matplotlib

    matplotlib.use("Agg")  # no display: this runs in CI and over ssh
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    longest_ms = 1000 * max((max(v) for v in latencies_s.values() if v), default=1.0)
    # Shared, logarithmic bins: a paced phase's milliseconds and a burst's queueing seconds
    # both stay readable on one axis.
    edges = [max(longest_ms, 10.0) ** (i / 60) for i in range(61)]
    for name, values in latencies_s.items():
        if values:
            left.hist([max(v * 1000, 1.0) for v in values], bins=edges, alpha=0.5, label=name)
    left.set_xscale("log")
    left.set_xlabel("placed → shipped (ms, log scale)")
    left.set_ylabel("orders")
    left.set_title("Latency distribution")
    left.legend()
    for name, points in series.items():
        if points:
            right.plot([t for t, _ in points], [r for _, r in points], label=name)
    right.set_xlabel("seconds since the first order")
    right.set_ylabel("orders finished per second")
    right.set_title("Throughput over time")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)


def table(result: Mapping[str, Any]) -> str:
    """The headline numbers side by side, as a Markdown table."""
    system, baseline, ratio = result["system"], result["baseline"], result["ratios"]
    rows = [
        ("orders shipped / s", "orders_per_s", ratio.get("throughput")),
        ("checkout intake req/s", "intake_rps", ratio.get("intake")),
    ]
    lines = [
        "| measure | system | baseline | system / baseline |",
        "|---|---:|---:|---:|",
    ]
    for label, key, r in rows:
        s, b = system.get(key), baseline.get(key)
        lines.append(f"| {label} | {_fmt(s)} | {_fmt(b)} | {_fmt(r)} |")
    for name in ("p50", "p95", "p99", "max"):
        s = system.get("latency_ms", {}).get(name)
        b = baseline.get("latency_ms", {}).get(name)
        r = ratio.get("p99_latency") if name == "p99" else measure.ratio(s, b)
        lines.append(f"| placed→shipped {name} ms | {_fmt(s)} | {_fmt(b)} | {_fmt(r)} |")
    lines.append(
        f"| messages / order | {_fmt(system.get('messages_per_order'))} "
        f"| {_fmt(baseline.get('messages_per_order'))} | |"
    )
    s_cpu, b_cpu = system.get("cpu_s_per_order_total"), baseline.get("cpu_s_per_order_total")
    lines.append(
        f"| CPU s / order (all processes) | {_fmt(s_cpu)} | {_fmt(b_cpu)} "
        f"| {_fmt(measure.ratio(s_cpu, b_cpu))} |"
    )
    return "\n".join(lines)
