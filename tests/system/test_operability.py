"""What an operator scrapes from the running processes: the shop's and Flower's /metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.shop import order_body, wait_for
from tests.system.conftest import FLOWER_PASSWORD, FLOWER_USER, RunningShop

SCRAPES = 6  # gunicorn runs two workers; a few scrapes land on both


def checkout_count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "shoeshop_checkout_duration_seconds_count":
                total += sample.value
    return total


def test_every_gunicorn_worker_reports_the_checkouts_of_all_of_them(
    running_shop: RunningShop,
) -> None:
    with httpx.Client(base_url=running_shop.url, timeout=10) as client:
        for _ in range(4):
            assert client.post("/api/orders", json=order_body()).status_code == 202

        counts = {checkout_count(client.get("/metrics").text) for _ in range(SCRAPES)}
        body = client.get("/metrics").text

    assert counts == {4.0}
    assert "shoeshop_queue_depth" in body
    assert "shoeshop_outbox_oldest_unpublished_age_seconds" in body


def test_flower_serves_its_metrics_to_a_scraper_with_its_credentials(
    running_shop: RunningShop,
) -> None:
    # Flower itself leaves /metrics open (its pages and API need the password): Flower listens
    # on 127.0.0.1 only, and a scraper sends the credentials anyway, as here.
    url = f"{running_shop.flower_url}/metrics"

    def scraped() -> str | None:
        response = httpx.get(url, auth=(FLOWER_USER, FLOWER_PASSWORD), timeout=10)
        return response.text if response.status_code == 200 else None

    body = wait_for(scraped, timeout_s=60, every_s=1)
    assert "flower_" in body
