"""The results of a run: machine facts, the JSON file, the PNG beside it, the printed table."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from config.settings import QUEUES
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


# The baselines, in the order they run and are printed: the naive Celery shop, the no-op chain.
BASELINES = ("naive", "chain")
RATIO_KEYS = ("throughput", "p99_latency", "intake", "cpu_per_order")


def ratios(system: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """system / baseline for the figures the issue sets targets on: orders shipped per second,
    p99 placed→shipped (at half the system's capacity when a paced phase ran), checkout intake,
    and CPU seconds per order over every process of a side."""
    return {
        "throughput": measure.ratio(system.get("orders_per_s"), baseline.get("orders_per_s")),
        "p99_latency": measure.ratio(
            (system.get("latency_ms") or {}).get("p99"),
            (baseline.get("latency_ms") or {}).get("p99"),
        ),
        "intake": measure.ratio(system.get("intake_rps"), baseline.get("intake_rps")),
        "cpu_per_order": measure.ratio(
            system.get("cpu_s_per_order_total"), baseline.get("cpu_s_per_order_total")
        ),
    }


def compare(
    system: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, float | None]]:
    """The ratios against each baseline, by its name."""
    return {name: ratios(system, side) for name, side in baselines.items()}


def medians(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The median of each ratio and headline figure over several runs, with every run's own.

    ``median`` and ``each`` have one shape: ``ratios`` by baseline and ratio, ``orders_per_s``
    by side (system and each baseline), the system's backlog drain and largest worker.
    """
    names = [name for name in BASELINES if any(name in r["baselines"] for r in results)]
    each: dict[str, Any] = {
        "ratios": {
            name: {key: [r["ratios"].get(name, {}).get(key) for r in results] for key in RATIO_KEYS}
            for name in names
        },
        "orders_per_s": {
            "system": [r["system"].get("orders_per_s") for r in results],
            **{
                name: [r["baselines"].get(name, {}).get("orders_per_s") for r in results]
                for name in names
            },
        },
        "backlog_drain_vs_steady": [
            (r["system"].get("backlog") or {}).get("vs_steady") for r in results
        ],
        "largest_worker_rss_mb": [_largest_worker_rss(r["system"]) for r in results],
    }
    return {"runs": [r["started"] for r in results], "median": _median_of(each), "each": each}


def _median_of(values: Any) -> Any:
    """The same nesting with each list of figures replaced by its median."""
    if isinstance(values, dict):
        return {key: _median_of(value) for key, value in values.items()}
    return measure.median(values)


# Every component's worker counts (issue #20: every worker within 80 MB), notifications too: it
# was left out until 2026-12-01, when it was the largest (76 MB against 74).
WORKER_KINDS = QUEUES


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
    """The headline numbers side by side, as a Markdown table: a column per side (the system,
    then each baseline), then the system over each baseline."""
    names = [name for name in BASELINES if name in result["baselines"]]
    sides = [result["system"], *(result["baselines"][name] for name in names)]
    ratio = result["ratios"]
    lines = [
        "| measure | system | "
        + " | ".join([*names, *(f"system / {name}" for name in names)])
        + " |",
        "|---|" + "---:|" * (1 + 2 * len(names)),
    ]

    def row(label: str, figures: list[Any], ratio_key: str | None = None) -> None:
        if ratio_key is None:
            ratios_ = [measure.ratio(figures[0], figure) for figure in figures[1:]]
        else:
            ratios_ = [ratio.get(name, {}).get(ratio_key) for name in names]
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in [*figures, *ratios_]) + " |")

    row("orders shipped / s", [side.get("orders_per_s") for side in sides], "throughput")
    row("checkout intake req/s", [side.get("intake_rps") for side in sides], "intake")
    for name in ("p50", "p95", "p99", "max"):
        figures = [(side.get("latency_ms") or {}).get(name) for side in sides]
        row(f"placed→shipped {name} ms", figures, "p99_latency" if name == "p99" else None)
    row("messages / order", [side.get("messages_per_order") for side in sides])
    row(
        "CPU s / order (all processes)",
        [side.get("cpu_s_per_order_total") for side in sides],
        "cpu_per_order",
    )
    return "\n".join(lines)
