"""Which failures of a subscriber pass by themselves (retried with backoff) and which never will
(parked at once). The table in docs/reliability.md, "Which faults retry", says the same, and
tests/unit/test_faults.py holds the two together.

A fault is transient only when the same message, tried again later, may succeed with no change
to the code or the data: a lock, a lost connection, a service that answered "not now". Anything
else is a bug or bad data, and trying again only delays the dead letter an operator must read
(DESIGN: bugs are not retried).
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.exc import DBAPIError

from workers.messaging.errors import TransientError

# SQLite's messages for a lock another connection holds: "database is locked", "database table
# is locked", and "database is busy" from some builds. Every other sqlite3.OperationalError (no
# such table, a syntax error, disk full) stays as it is on the next try.
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database is busy")
# kombu's and redis-py's errors for a broker or cache that cannot be reached right now.
_UNREACHABLE_MODULES = ("kombu.exceptions", "redis.exceptions", "amqp.exceptions")
_UNREACHABLE_NAMES = (
    "OperationalError",
    "ConnectionError",
    "TimeoutError",
    "RecoverableConnectionError",
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may pass if the same message is tried again later:

    - a TransientError of ours (the gateway's 5xx and timeouts, a SQLite write turn not given);
    - a database error on a connection that was lost (SQLAlchemy marks it invalidated);
    - SQLite: a database or table locked by another connection;
    - PostgreSQL: psycopg's OperationalError, which is what it raises for SQLSTATE classes 08
      (connection), 40 (transaction rollback: 40001 serialization failure, 40P01 deadlock),
      53 (insufficient resources), 57 (operator intervention: the server shutting down) and 58;
    - a socket that failed or timed out (ConnectionError, TimeoutError), and kombu's, amqp's and
      redis-py's errors for a broker or cache that cannot be reached.

    Everything else is not: a contract violation, a broken invariant, an IntegrityError, a
    KeyError or any other bug.
    """
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or _transient_driver_error(exc.orig)
    return any(
        cls.__module__ in _UNREACHABLE_MODULES and cls.__name__ in _UNREACHABLE_NAMES
        for cls in type(exc).__mro__
    )


def _transient_driver_error(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig).startswith(_SQLITE_LOCKED)
    # psycopg is loaded only where PostgreSQL is used: an error of it cannot exist otherwise.
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(orig, psycopg.OperationalError)
