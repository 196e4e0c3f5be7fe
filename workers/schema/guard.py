"""No process runs against a database behind its code: each one checks at start and refuses."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from config.settings import COMPONENTS, DEV_MAIL_FROM, ConfigurationError, get_settings
from workers.messaging.database import engine_for
from workers.schema.revision import DatabaseUnreadable, first_line

# Every worker may park a message, and dead letters live in the operations database.
ALWAYS = ("operations",)


def require_current_schemas(components: Iterable[str]) -> None:
    """Open each component's database, which checks its revision (workers.messaging.database).

    Raises SchemaNotCurrent for the first database that is behind (or ahead of) this code, and
    DatabaseUnreadable for one that cannot be opened or read (server down, not a database).
    """
    for component in dict.fromkeys([*components, *ALWAYS]):
        try:
            engine_for(component)
        except SQLAlchemyError as exc:
            raise DatabaseUnreadable(component, first_line(exc)) from None
        except OSError as exc:  # the data directory cannot be made
            raise DatabaseUnreadable(component, str(exc)) from None


def refuse_to_start_worker(options: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery's ``celeryd_init`` receiver: a worker whose databases are not current, or cannot
    be read, exits at once with the reason instead of failing (and parking) every message.

    SystemExit, because Celery logs any other exception of a receiver and starts anyway.
    """
    queues = (options or {}).get("queues") or COMPONENTS
    if isinstance(queues, str):
        queues = queues.split(",")
    try:
        require_current_schemas(q for q in queues if q in COMPONENTS)
        require_mail_server(queues)
    except Exception as exc:  # whatever it is, the worker must not start past it
        sys.exit(f"refusing to start: {exc}")


def require_mail_server(queues: Iterable[str]) -> None:
    """A worker on the notifications queue sends mail: without SHOESHOP_SMTP_URL every message
    would be retried and parked (``shoeshop up`` sets the URL of its local mail catcher when none
    is set), and in production its mails need a sender of the shop's own. Raises
    ConfigurationError."""
    if "notifications" not in queues:
        return
    settings = get_settings()
    if settings.smtp_url is None:
        raise ConfigurationError(
            "a notifications worker needs SHOESHOP_SMTP_URL (smtp://host:port, or smtps://)"
        )
    if settings.is_production and settings.mail_from == DEV_MAIL_FROM:
        raise ConfigurationError(
            "a notifications worker needs SHOESHOP_MAIL_FROM when SHOESHOP_ENV=production: the "
            "development sender's domain (.invalid) is nobody's"
        )
