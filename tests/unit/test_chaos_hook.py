"""The reordering hook (workers.messaging.chaos): off unless SHOESHOP_CHAOS_REORDER sets a seed,
refused in production, and when on a plan of one or two copies per send, each held back whole
seconds, decided by the seed, the event and the subscriber alone."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from config.settings import ConfigurationError, Settings, get_settings
from workers.messaging.chaos import (
    DELAYS_S,
    DUPLICATE_RATE,
    SHOP_DELAYS_S,
    countdowns,
    delays_for,
    sends,
)

TASK = "shop.on_order_status_changed"
PRODUCTION = {
    "SHOESHOP_ENV": "production",
    "SHOESHOP_SECRET_KEY": "a-real-secret-key-of-forty-characters-xx",
    "SHOESHOP_ADMIN_PASSWORD": "a-real-admin-password",
}


def _ids(count: int) -> list[str]:
    return [str(uuid.UUID(int=n, version=4)) for n in range(1, count + 1)]


@pytest.fixture()
def hook_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process's settings read afresh from an environment the test sets."""
    monkeypatch.delenv("SHOESHOP_CHAOS_REORDER", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_same_seed_event_and_subscriber_always_give_the_same_plan() -> None:
    event_id = str(uuid.uuid4())
    assert len({countdowns(7, event_id, TASK) for _ in range(20)}) == 1


def test_each_send_is_one_or_two_copies_held_back_whole_seconds() -> None:
    plans = [countdowns(7, event_id, TASK) for event_id in _ids(2000)]
    assert {len(plan) for plan in plans} == {1, 2}
    assert {delay for plan in plans for delay in plan} == set(delays_for(TASK))
    assert all(isinstance(delay, int) for plan in plans for delay in plan)


def test_only_the_shops_copies_are_held_longer_than_two_seconds() -> None:
    # The shop knows its orders; the others wait for an event they overtook within a retry
    # budget of a few seconds (notifications for the order.placed naming the customer).
    assert delays_for(TASK) == SHOP_DELAYS_S and max(SHOP_DELAYS_S) > max(DELAYS_S)
    for task in ("notifications.on_order_status_changed", "orders.on_payment_succeeded"):
        assert delays_for(task) == DELAYS_S == (0, 1, 2)
        held = {delay for event_id in _ids(500) for delay in countdowns(7, event_id, task)}
        assert held == set(DELAYS_S)


def test_about_the_duplicate_rate_of_sends_go_out_twice() -> None:
    twice = sum(len(countdowns(7, event_id, TASK)) == 2 for event_id in _ids(2000)) / 2000
    assert abs(twice - DUPLICATE_RATE) < 0.05


def test_every_delay_is_as_likely() -> None:
    delays = Counter(countdowns(7, event_id, TASK)[0] for event_id in _ids(3000))
    assert all(abs(n / 3000 - 1 / len(delays_for(TASK))) < 0.05 for n in delays.values())


def test_the_subscriber_and_the_seed_change_the_plan() -> None:
    ids = _ids(200)
    plan = [countdowns(7, event_id, TASK) for event_id in ids]
    assert plan != [countdowns(8, event_id, TASK) for event_id in ids]
    assert plan != [
        countdowns(7, event_id, "notifications.on_order_status_changed") for event_id in ids
    ]


def test_off_by_default_each_event_is_sent_once_at_once(hook_env: pytest.MonkeyPatch) -> None:
    assert get_settings().chaos_reorder_seed is None
    assert all(sends(event_id, TASK) == [{}] for event_id in _ids(100))


def test_zero_is_off(hook_env: pytest.MonkeyPatch) -> None:
    hook_env.setenv("SHOESHOP_CHAOS_REORDER", "0")
    assert all(sends(event_id, TASK) == [{}] for event_id in _ids(100))


def test_a_seed_turns_it_on_with_the_plan_as_send_options(hook_env: pytest.MonkeyPatch) -> None:
    hook_env.setenv("SHOESHOP_CHAOS_REORDER", "19")
    for event_id in _ids(200):
        expected = [{"countdown": d} if d else {} for d in countdowns(19, event_id, TASK)]
        assert sends(event_id, TASK) == expected


@pytest.mark.parametrize("raw", ["-1", "yes", "1.5", "2147483648", "١٢", "  "])
def test_anything_but_a_seed_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"SHOESHOP_CHAOS_REORDER": raw})
    assert str(refused.value).startswith("SHOESHOP_CHAOS_REORDER must be unset or 0 (off)")
    assert str(refused.value).endswith(f"not {raw!r}")


def test_production_refuses_the_hook() -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({**PRODUCTION, "SHOESHOP_CHAOS_REORDER": "19"})
    assert "SHOESHOP_ENV=production" in str(refused.value)


def test_production_starts_with_the_hook_off() -> None:
    for off in ({}, {"SHOESHOP_CHAOS_REORDER": ""}, {"SHOESHOP_CHAOS_REORDER": "0"}):
        assert Settings.from_env({**PRODUCTION, **off}).chaos_reorder_seed is None
