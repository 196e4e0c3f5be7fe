"""The Prometheus alert rules (config/prometheus/alerts.yml): valid for promtool, each one firing
on its case and quiet on another (alerts_test.yml), and each telling the operator what to do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import stack as stacks

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "config" / "prometheus" / "alerts_test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
SEVERITIES = {"warning", "critical"}


@pytest.fixture(scope="module")
def promtool() -> str:
    """promtool's path (Debian's `prometheus` package; .ci/run installs it). Skips without it,
    but fails when SHOESHOP_REQUIRE_SERVICES=1, as in CI."""
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (apt-get install prometheus)"
        if stacks.services_required():
            pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return path


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_finds_the_alert_rules_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_cases_expect(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULE_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]

    for rule in alerting_rules():
        name = rule["alert"]
        outcomes = [bool(check["exp_alerts"]) for check in checks if check["alertname"] == name]
        assert True in outcomes, f"{name} has no case that fires"
        assert False in outcomes, f"{name} has no case that stays quiet"


def test_every_alert_waits_has_a_severity_and_says_what_to_do() -> None:
    documented = OPERATIONS.read_text(encoding="utf-8")

    for rule in alerting_rules():
        name = rule["alert"]
        assert rule.get("for"), f"{name} has no for:"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name} has no summary"
        assert "docs/operations.md" in annotations.get("description", ""), name
        assert f"### {name}" in documented, f"docs/operations.md has no section on {name}"
