"""Whether an order waits on a parked message: asked of the operations store via the kit."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from workers.messaging import deadletters

log = logging.getLogger(__name__)

# The queue a parked message was for names the step of the order that is held up.
STAGES = {"orders": "order", "payments": "payment", "shipping": "shipping", "shop": "tracking"}


def delay_of(order_id: str) -> dict[str, Any] | None:
    """``{"since", "stage"}`` of the oldest parked message about the order, or None."""
    try:
        letters = deadletters.parked(subject=order_id)
    except SQLAlchemyError as exc:  # the operations store is away: show the order, not an error
        log.warning("could not ask the dead letters about order %s: %s", order_id, exc)
        return None
    if not letters:
        return None
    oldest = letters[0]
    return {
        "since": oldest.first_failed_at.isoformat(),
        "stage": STAGES.get(oldest.queue, oldest.queue),
    }
