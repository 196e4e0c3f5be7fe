"""Every metric the alert rules name (config/prometheus/alerts.yml) is in a live shop's /metrics:
a renamed or dropped metric would leave its alert silent for ever."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from celery import Celery
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from config.settings import get_settings
from tests.support.integration import order, place
from tests.support.shop import wait_for
from workers.messaging.envelope import utcnow
from workers.operations import redelivery

pytestmark = pytest.mark.usefixtures("worker")

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}
RULES = Path(__file__).resolve().parents[2] / "config" / "prometheus" / "alerts.yml"

# What PromQL writes between a metric's name and its samples: strings, label matchers, range
# and subquery brackets, and the label lists of by/without/on/ignoring/group_left/group_right.
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# A number or duration (1e3, 0x10, 5m) is one token, so its letters are not read as a name.
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, keywords or labels)."""
    for pattern in (_STRINGS, _MATCHERS, _BRACKETS, _LABEL_LISTS):
        expr = pattern.sub(" ", expr)
    names = set()
    for token in _TOKEN.finditer(expr):
        name = token.group()
        is_call = expr[token.end() :].lstrip().startswith("(")
        if not name[0].isdigit() and not is_call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def rule_exprs() -> dict[str, str]:
    """Each rule's name (an alert's, or the series a recording rule writes) and expression."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in groups
        for rule in group["rules"]
    }


def recorded_names() -> set[str]:
    """The series the recording rules write: Prometheus makes them, /metrics does not."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def scraped_names(client: FlaskClient) -> set[str]:
    """Every family and sample name of one scrape (``orders_placed`` and ``orders_placed_total``
    alike: a rule names the sample)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_metric_names_are_read_from_an_expression_without_functions_labels_or_numbers() -> None:
    expr = 'sum by (queue) (rate(a_total{queue="x y"}[5m] offset 1h)) > 1e3 and on(queue) b:c'

    assert metric_names(expr) == {"a_total", "b:c"}


def test_a_live_shop_serves_every_metric_the_rules_name(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, sku="CAS-001", size="42")
    wait_for(lambda: order(client, order_id)["status"] == "SHIPPED")
    # The relay's redelivery sweep, which records the subscribers' lag, has run once.
    redelivery.redeliver_unapplied(celery_app, utcnow(), timedelta(minutes=5))

    served = scraped_names(client) | recorded_names()

    for rule, expr in rule_exprs().items():
        named = metric_names(expr)
        assert named, f"{rule}: no metric name found in {expr!r}"
        missing = sorted(named - served)
        assert not missing, f"{rule} names metrics /metrics does not serve: {missing}"


def stalled_by_queue(client: FlaskClient) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.get_data(as_text=True))
    family = next(f for f in families if f.name == "shoeshop_pipeline_stalled")
    return {sample.labels["queue"]: sample.value for sample in family.samples}


def test_a_queue_behind_past_the_stall_bound_is_stalled_on_metrics_and_the_dashboard(
    client: FlaskClient,
) -> None:
    # What the redelivery sweep records when it finds payments' subscribers an event behind by
    # more than SHOESHOP_STALL_AFTER and shipping's by less.
    now, stall_after = utcnow(), get_settings().stall_after_s
    behind = {
        "payments": now - timedelta(seconds=stall_after + 30),
        "shipping": now - timedelta(seconds=stall_after - 30),
    }
    redelivery.record_lag(now, behind)
    try:
        stalled = stalled_by_queue(client)
        page = client.get("/admin", headers=ADMIN)
        ready = client.get("/readyz")
    finally:
        redelivery.record_lag(utcnow(), {})

    assert stalled == {"shop": 0, "orders": 0, "payments": 1, "shipping": 0, "notifications": 0}
    html = page.get_data(as_text=True)
    row = re.compile(r'<tr data-queue="(\w+)">.*?<td class="pipeline">(.*?)</td>', re.S)
    pipelines = {queue: re.sub(r"<[^>]+>", "", cell) for queue, cell in row.findall(html)}
    assert pipelines["payments"] == "stalled"
    assert pipelines["shipping"] == pipelines["orders"] == "flowing"
    assert f"older than {stall_after} s" in html
    assert ready.status_code == 200  # a stalled worker only delays orders
    assert stalled_by_queue(client)["payments"] == 0  # the next sweep found it applied
