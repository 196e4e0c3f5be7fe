"""Retry delays grow exponentially, are jittered, and never pass the configured ceiling."""

from __future__ import annotations

import random

from config.settings import Settings
from workers.messaging.consumer import backoff_delay


def test_delays_grow_and_stay_under_the_ceiling() -> None:
    settings = Settings.from_env(
        {"SHOESHOP_RETRY_BASE_DELAY": "1", "SHOESHOP_RETRY_MAX_DELAY": "30"}
    )
    rng = random.Random(7)
    delays = [backoff_delay(attempt, settings, rng) for attempt in range(10)]
    assert 0.5 <= delays[0] <= 1
    assert 4 <= delays[3] <= 8
    assert all(delay <= 30 for delay in delays)


def test_jitter_spreads_retries_of_the_same_attempt() -> None:
    settings = Settings.from_env({})
    rng = random.Random(1)
    assert len({round(backoff_delay(4, settings, rng), 6) for _ in range(20)}) > 1
