"""The reordering hook: events sent late, twice and out of order (SHOESHOP_CHAOS_REORDER).

A test hook of the failure matrix (tests/chaos, scenario ``reordered``), off unless
SHOESHOP_CHAOS_REORDER sets a seed, and refused with SHOESHOP_ENV=production (config.settings).
When it is on, ``publish`` sends each event to each of its subscribers as one copy or two, each
held back a whole number of seconds by a Celery countdown: the events of one order then reach
their consumers late, twice, and in another order than they were emitted, as a slow broker, a
retry or the relay's re-send can deliver them.

What happens to a send depends on the seed, the event's id and the subscriber only, so every
process decides alike (the relay re-sending an event repeats its writer's plan) and a plan can be
read back from the ids.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from config.settings import get_settings
from workers.messaging.subscriptions import queue_of

log = logging.getLogger(__name__)

# How long a copy is held back, each as likely. Whole seconds: RabbitMQ's native delayed
# delivery counts whole seconds (it would send a fraction under one at once). Two seconds are
# far longer than a step of an order takes (tens of milliseconds), so a notice sent early often
# arrives after one sent later, and far shorter than the redelivery sweep's wait
# (SHOESHOP_REDELIVER_AFTER), which would otherwise re-send the held-back event itself.
DELAYS_S = (0, 1, 2)
# A copy to one of the shop's tasks may also be held 6 s (each of the four as likely). A step
# can take a second on a busy database, and a notice is overtaken only when held longer than the
# steps between it and the next: in one CI run on RabbitMQ + PostgreSQL, after make test, no
# order's status changes reached the shop out of order with holds of at most 2 s, and the
# failure matrix's scenario 11, which audits the shop's view, proved nothing. The shop can
# wait that long: it knows every order from its own checkout, so no copy it receives waits on
# another. The other subscribers' copies stay within 2 s, under the retry budget with which a
# consumer waits for an event it overtook (notifications for the order.placed that names the
# customer).
SHOP_DELAYS_S = (*DELAYS_S, 6)
# How often a send goes out twice (both copies with the same task id, as a re-send has).
DUPLICATE_RATE = 0.3


def countdowns(seed: int, event_id: str, task_name: str) -> tuple[int, ...]:
    """The countdown, in seconds, of each copy of one event to send to one subscriber: one
    copy, or two; 0 sends at once. The same arguments always give the same plan."""
    draw = random.Random(f"{seed}:{event_id}:{task_name}")
    copies = 2 if draw.random() < DUPLICATE_RATE else 1
    return tuple(draw.choice(delays_for(task_name)) for _ in range(copies))


def delays_for(task_name: str) -> tuple[int, ...]:
    """The holds, in whole seconds, a copy of an event sent to ``task_name`` can get."""
    return SHOP_DELAYS_S if queue_of(task_name) == "shop" else DELAYS_S


def sends(event_id: str, task_name: str) -> list[dict[str, Any]]:
    """The ``send_task`` options of each copy of one event to send to one subscriber:
    ``[{}]`` (one copy, at once, as without the hook) unless SHOESHOP_CHAOS_REORDER is set."""
    seed = get_settings().chaos_reorder_seed
    if seed is None:
        return [{}]
    plan = countdowns(seed, event_id, task_name)
    if plan != (0,):
        log.info(
            "reordering hook: event %s to %s sent with countdowns %s", event_id, task_name, plan
        )
    return [{"countdown": delay} if delay else {} for delay in plan]
