"""Every metric the alert rules name (config/prometheus/alerts.yml) is in a live shop's /metrics:
a renamed or dropped metric would leave its alert silent for ever."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from celery import Celery
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.integration import order, place
from tests.support.shop import wait_for
from workers.messaging.envelope import utcnow
from workers.operations import redelivery

pytestmark = pytest.mark.usefixtures("worker")

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
