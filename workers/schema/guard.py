"""No process runs against a database behind its code: each one checks at start and refuses."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from config.settings import COMPONENTS
from workers.messaging.database import engine_for
from workers.schema.revision import SchemaNotCurrent

log = logging.getLogger(__name__)

# Every worker may park a message, and dead letters live in the operations database.
ALWAYS = ("operations",)


def require_current_schemas(components: Iterable[str]) -> None:
    """Open each component's database, which checks its revision (workers.messaging.database).

    Raises SchemaNotCurrent for the first database that is behind (or ahead of) this code.
    """
    for component in dict.fromkeys([*components, *ALWAYS]):
        engine_for(component)


def refuse_to_start_worker(options: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery's ``celeryd_init`` receiver: a worker whose databases are not current exits at
    once, with the reason, instead of failing (and parking) every message it takes."""
    queues = (options or {}).get("queues") or COMPONENTS
    if isinstance(queues, str):
        queues = queues.split(",")
    try:
        require_current_schemas(q for q in queues if q in COMPONENTS)
    except SchemaNotCurrent as exc:
        log.critical("refusing to start: %s", exc)
        raise SystemExit(f"refusing to start: {exc}") from None
