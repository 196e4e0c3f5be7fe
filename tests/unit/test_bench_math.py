"""The benchmark's arithmetic: percentiles, ratios, rates and latencies read from timelines."""

from __future__ import annotations

from typing import Any

import pytest

from workers.bench import measure, procstat, report
from workers.bench.baseline import baseline_commands, finished
from workers.bench.baseline_app import hop_queues
from workers.bench.naive import naive_commands

PLACED = measure.PLACED
STATUS = measure.STATUS_CHANGED


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]

    assert measure.percentile(values, 50) == 25.0
    assert measure.percentile(values, 0) == 10.0
    assert measure.percentile(values, 100) == 40.0
    assert measure.percentile(values, 99) == pytest.approx(39.7)


def test_percentile_of_one_value_is_that_value() -> None:
    assert measure.percentile([7.0], 99) == 7.0


def test_percentile_refuses_no_values_and_out_of_range_q() -> None:
    with pytest.raises(ValueError):
        measure.percentile([], 50)
    with pytest.raises(ValueError):
        measure.percentile([1.0], 101)


def test_summary_reports_milliseconds_from_seconds() -> None:
    summary = measure.summary_ms([0.1, 0.2, 0.3, 0.4, 1.0])

    assert summary == {"p50": 300.0, "p95": 880.0, "p99": 976.0, "max": 1000.0}


def test_ratio_is_system_over_baseline_and_none_without_a_baseline() -> None:
    assert measure.ratio(30.0, 60.0) == 0.5
    assert measure.ratio(30.0, 0.0) is None
    assert measure.ratio(None, 60.0) is None


def test_rate_is_zero_for_an_empty_window() -> None:
    assert measure.rate(100, 10.0, 14.0) == 25.0
    assert measure.rate(100, 10.0, 10.0) == 0.0


def test_report_ratios_compare_throughput_p99_intake_and_cpu_per_order() -> None:
    system = {
        "orders_per_s": 20.0,
        "intake_rps": 60.0,
        "latency_ms": {"p99": 900.0},
        "cpu_s_per_order_total": 0.12,
    }
    baseline = {
        "orders_per_s": 80.0,
        "intake_rps": 200.0,
        "latency_ms": {"p99": 300.0},
        "cpu_s_per_order_total": 0.04,
    }

    assert report.ratios(system, baseline) == {
        "throughput": 0.25,
        "p99_latency": 3.0,
        "intake": 0.3,
        "cpu_per_order": 3.0,
    }


def test_the_ratios_are_taken_against_each_baseline_by_name() -> None:
    system = {"orders_per_s": 20.0, "latency_ms": {"p99": 900.0}}
    baselines: dict[str, dict[str, Any]] = {
        "naive": {"orders_per_s": 25.0, "latency_ms": {"p99": 600.0}},
        "chain": {"orders_per_s": 80.0, "latency_ms": None},
    }

    ratios = report.compare(system, baselines)

    assert ratios["naive"]["throughput"] == 0.8
    assert ratios["naive"]["p99_latency"] == 1.5
    assert ratios["chain"]["throughput"] == 0.25
    assert ratios["chain"]["p99_latency"] is None  # a side that measured no latency
    assert set(ratios["chain"]) == {"throughput", "p99_latency", "intake", "cpu_per_order"}


def test_the_table_has_a_column_per_side_and_a_ratio_column_per_baseline() -> None:
    side = {
        "orders_per_s": 40.0,
        "intake_rps": 80.0,
        "latency_ms": {"p50": 100.0, "p95": 200.0, "p99": 400.0, "max": 500.0},
        "messages_per_order": 4.0,
        "cpu_s_per_order_total": 0.05,
    }
    system = {**side, "orders_per_s": 20.0, "messages_per_order": 8.0}
    baselines: dict[str, dict[str, Any]] = {"naive": side, "chain": {**side, "orders_per_s": 80.0}}
    result = {"system": system, "baselines": baselines, "ratios": report.compare(system, baselines)}

    lines = report.table(result).splitlines()

    assert lines[0] == "| measure | system | naive | chain | system / naive | system / chain |"
    assert lines[1] == "|---|---:|---:|---:|---:|---:|"
    assert "| orders shipped / s | 20.00 | 40.00 | 80.00 | 0.50 | 0.25 |" in lines
    assert "| messages / order | 8.00 | 4.00 | 4.00 | 2.00 | 2.00 |" in lines
    assert all(line.count("|") == 7 for line in lines)


def test_latency_runs_from_placed_to_the_last_status_change_of_a_shipped_order() -> None:
    view = {
        "status": "SHIPPED",
        "timeline": [
            {"type": PLACED, "time": "2026-01-01T10:00:00+00:00"},
            {"type": STATUS, "time": "2026-01-01T10:00:00.250000+00:00"},
            {"type": STATUS, "time": "2026-01-01T10:00:01.500000+00:00"},
            {"type": "shoeshop.shipment.dispatched.v1", "time": "2026-01-01T10:00:01.400000+00:00"},
        ],
    }

    placed, shipped = measure.placed_and_shipped(view) or (0.0, 0.0)

    assert shipped - placed == pytest.approx(1.5)


def test_an_order_not_yet_shipped_has_no_latency() -> None:
    view = {"status": "PAID", "timeline": [{"type": PLACED, "time": "2026-01-01T10:00:00+00:00"}]}

    assert measure.placed_and_shipped(view) is None


def test_throughput_series_counts_completions_per_second_including_empty_seconds() -> None:
    series = measure.throughput_series([100.2, 100.7, 102.5], start=100.0)

    assert series == [(0.0, 2.0), (1.0, 0.0), (2.0, 1.0)]


def test_the_baseline_chain_has_the_systems_message_count_with_its_critical_path_first() -> None:
    assert hop_queues(9) == [
        "bench_orders",
        "bench_payments",
        "bench_orders",
        "bench_shipping",
        "bench_orders",
        *["bench_shop"] * 4,
    ]


def test_the_baseline_runs_in_the_procfiles_layout_on_its_own_app_and_queues() -> None:
    procfile = (
        "web: gunicorn --config python:shop.web.gunicorn_conf --bind 127.0.0.1:${PORT:-8000} "
        "--workers 2 --threads 4 'shop.web.app:create_app()'\n"
        "payments: shoeshop-worker -Q payments -n payments@%h -E "
        "--pool threads --concurrency 8\n"
        "shop: shoeshop-worker -Q shop -n shop@%h -E --pool threads\n"
        "orders: shoeshop-worker -Q orders -n orders@%h -E --pool threads\n"
        "shipping: shoeshop-worker -Q shipping -n shipping@%h -E "
        "--pool threads\n"
        "relay: shoeshop relay\n"
    )

    commands = baseline_commands(procfile)

    assert commands["bench_payments"] == (
        "celery -A workers.bench.baseline_app worker -Q bench_payments -n bench_payments@%h -E "
        "--pool threads --concurrency 8"
    )
    assert "--workers 2 --threads 4" in commands["web"]
    assert "workers.bench.baseline_web:create_app()" in commands["web"]
    assert "gunicorn_conf" not in commands["web"]
    assert "relay" not in commands


def test_the_median_of_several_runs_takes_each_figure_on_its_own() -> None:
    def run(started: str, throughput: float, drain: float | None, rss: float) -> dict[str, object]:
        ratios = {"throughput": throughput, "p99_latency": 2.0, "intake": 0.5, "cpu_per_order": 3}
        return {
            "started": started,
            "ratios": {"naive": {**ratios, "throughput": 2 * throughput}, "chain": ratios},
            "system": {
                "orders_per_s": 20 * throughput,
                "backlog": None if drain is None else {"vs_steady": drain},
                "rss_mb": {"orders": rss, "notifications": rss - 1, "flower": 300.0, "web": 90.0},
            },
            "baselines": {"naive": {"orders_per_s": 10.0}, "chain": {"orders_per_s": 20.0}},
        }

    summary = report.medians(
        [run("a", 0.3, 1.1, 79.0), run("b", 0.5, None, 81.0), run("c", 0.4, 0.9, 78.0)]
    )

    assert summary["runs"] == ["a", "b", "c"]
    assert summary["median"]["ratios"]["chain"]["throughput"] == 0.4
    assert summary["median"]["ratios"]["naive"]["throughput"] == 0.8
    assert summary["median"]["ratios"]["naive"]["cpu_per_order"] == 3.0
    assert summary["median"]["orders_per_s"] == {"system": 8.0, "naive": 10.0, "chain": 20.0}
    assert summary["median"]["backlog_drain_vs_steady"] == 1.0  # of the two runs that had one
    assert summary["median"]["largest_worker_rss_mb"] == 79.0  # workers only, not Flower
    # Every component's worker is one, notifications included
    alone = run("d", 0.4, 1.0, 70.0)
    alone["system"]["rss_mb"]["notifications"] = 77.0
    assert report.medians([alone])["median"]["largest_worker_rss_mb"] == 77.0
    assert summary["each"]["ratios"]["chain"]["throughput"] == [0.3, 0.5, 0.4]


def test_the_naive_shop_runs_in_the_procfiles_layout_beside_the_gateway_simulator() -> None:
    procfile = (
        "web: gunicorn --config python:shop.web.gunicorn_conf --bind 127.0.0.1:${PORT:-8000} "
        "--workers 2 --worker-class gevent 'shop.web.app:create_app()'\n"
        "payments: shoeshop-worker -Q payments -n payments@%h -E "
        "--pool threads --concurrency 8\n"
        "shop: shoeshop-worker -Q shop -n shop@%h -E --pool threads\n"
        "orders: shoeshop-worker -Q orders -n orders@%h -E --pool threads\n"
        "shipping: shoeshop-worker -Q shipping -n shipping@%h -E "
        "--pool threads\n"
        "notifications: shoeshop-worker -Q notifications -E\n"
        "relay: shoeshop relay\n"
    )

    commands = naive_commands(procfile, "gateway: shoeshop gateway\nmail: shoeshop mailcatcher\n")

    assert set(commands) == {
        "gateway",
        "web",
        "naive_shop",
        "naive_orders",
        "naive_payments",
        "naive_shipping",
    }
    assert commands["naive_payments"] == (
        "celery -A workers.bench.naive_app worker -Q naive_payments -n naive_payments@%h -E "
        "--pool threads --concurrency 8"
    )
    assert "--workers 2 --worker-class gevent" in commands["web"]
    assert "workers.bench.naive_web:create_app()" in commands["web"]
    assert commands["gateway"] == "shoeshop gateway"


def test_the_median_of_nothing_is_none() -> None:
    assert measure.median([None, None]) is None


def test_a_baseline_chain_counts_as_finished_only_with_both_of_its_marks() -> None:
    # The last hop's file can be read after the "shipped" hop's file was: "done" alone waits.
    assert not finished({"done": (1.0, 2.0)})
    assert not finished({"shipped": (1.0, 1.5)})
    assert finished({"shipped": (1.0, 1.5), "done": (1.0, 2.0)})


def test_a_worker_is_counted_under_its_queue_however_it_was_started() -> None:
    python = "/opt/shoeshop/.venv/bin/python3.11"
    system = [python, "/opt/shoeshop/.venv/bin/shoeshop-worker", "-Q", "orders", "-E"]
    baseline = [python, "/v/bin/celery", "-A", "workers.bench.naive_app", "worker", "--queues", "x"]

    assert procstat.classify(system) == "orders"
    assert procstat.classify(baseline) == "x"
    assert procstat.classify([python, "/v/bin/shoeshop", "relay"]) == "relay"
