"""Retry delays grow exponentially, are jittered, and never pass the configured ceiling."""

from __future__ import annotations

import random

import pytest

from config.settings import ConfigurationError, Settings
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


def test_a_visibility_timeout_shorter_than_a_retry_wait_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SHOESHOP_VISIBILITY_TIMEOUT"):
        Settings.from_env({"SHOESHOP_VISIBILITY_TIMEOUT": "20", "SHOESHOP_RETRY_MAX_DELAY": "30"})


def test_bad_numbers_in_the_environment_name_their_variable() -> None:
    with pytest.raises(ConfigurationError, match="SHOESHOP_MAX_RETRIES"):
        Settings.from_env({"SHOESHOP_MAX_RETRIES": "many"})
