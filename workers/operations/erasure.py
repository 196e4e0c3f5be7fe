"""Erasing a customer from what operations keeps: the dead letters about their orders and the
archived outbox rows (the shop erases its own copies and tells the other components; see
shop.erasure).

The erased orders are recorded first (``erased_orders``, in the dead letters' transaction): the
relay then archives any outbox row about them erased (retention), so a row it prunes after this
erasure and before its component has heard of it reaches no file with the data in it; rows
archived before are rewritten here, after the record, under the directory's lock.

A dead letter keeps the event erased (``erasure.erase_event``; it can still be replayed), its
failure's message and traceback without what they quoted of the event (``erasure.redact``),
and a raw body that is not an event is replaced outright (what it held cannot be told apart).
Archive files (``SHOESHOP_ARCHIVE_DIR``) are rewritten: a row about one of the orders is
erased, the others are left as they were, and a line that is no JSON (torn by a relay stopped
mid-write) is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, select, update

from config.settings import get_settings
from workers.messaging.database import transaction
from workers.messaging.envelope import utcnow
from workers.messaging.erasure import (
    ERASED,
    erase_event,
    lock_orders,
    personal_values,
    redact,
    remember_erased,
)
from workers.messaging.tables import dead_letters, erased_orders
from workers.operations import archives


def erase(order_ids: Sequence[str], archive_dir: Path | None = None) -> tuple[int, int]:
    """Erase the personal data of these orders from the dead letters and the archive files
    (``archive_dir``, else SHOESHOP_ARCHIVE_DIR, and every directory the relay noted archiving
    into); returns (letters, archived rows) rewritten. Raises sqlalchemy.exc.SQLAlchemyError
    when the operations database is away, OSError when an archive file cannot be rewritten or
    a noted directory is not on this host."""
    ids = set(order_ids)
    if not ids:
        return 0, 0
    letters = 0
    with transaction("operations") as conn:
        lock_orders(conn, sorted(ids))  # a letter being parked now sees the record, or is seen
        remember_erased(conn, erased_orders, sorted(ids), utcnow())
        rows = conn.execute(_LETTERS.where(dead_letters.c.subject.in_(sorted(ids)))).all()
        for row in rows:
            # What the failure's text quoted of the event (a refused recipient, a repr).
            quoted = personal_values(row.event.get("data") if isinstance(row.event, dict) else None)
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == row.id)
                .values(
                    event=erase_event(row.event) if row.event is not None else None,
                    raw=ERASED if row.raw is not None else None,
                    message=redact(row.message, quoted),
                    traceback=redact(row.traceback, quoted),
                )
            )
            letters += 1
        letters += _erase_unaddressed(conn, ids)
    archived = sum(_erase_archives(path, ids) for path in _archive_dirs(archive_dir))
    return letters, archived


def _archive_dirs(given: Path | None) -> list[Path]:
    """``given`` (else SHOESHOP_ARCHIVE_DIR) and every directory the relay noted archiving into,
    once each. Raises OSError naming a noted one that is not on this host: the erasure stops
    before the shop erases (customer_erasure), to be run again where the relay archives."""
    noted = archives.recorded()
    away = [str(path) for path in noted if not path.is_dir()]
    if away:
        raise OSError(
            f"the archive directory {', '.join(away)}, where the relay archives pruned rows, is "
            "not on this host: run the erasure on the relay's host"
        )
    named = given or get_settings().archive_dir
    # A directory named but never archived into does not exist yet: nothing in it to erase.
    return sorted({*noted, *([named] if named is not None and named.is_dir() else [])})


# What an erasure reads of a dead letter: what it rewrites, by the id it rewrites it under.
_LETTERS = select(
    dead_letters.c.id,
    dead_letters.c.event,
    dead_letters.c.raw,
    dead_letters.c.message,
    dead_letters.c.traceback,
)


def _erase_unaddressed(conn: Connection, ids: set[str]) -> int:
    """Letters that name no order (a body no task could read, kept as text; a body in a shape
    no event has) but hold one of ``ids`` somewhere: what they held cannot be told apart, so it
    goes whole (``raw`` and ``event``), and their texts lose what they quoted. Found among the
    letters without a subject (by its index: few, a failure each)."""
    rows = conn.execute(_LETTERS.where(dead_letters.c.subject.is_(None))).all()
    erased = 0
    for row in rows:
        held = f"{row.raw or ''} {json.dumps(row.event) if row.event is not None else ''}"
        about = [order_id for order_id in ids if order_id in held]
        if not about:
            continue
        quoted = _quoted(held)
        conn.execute(
            update(dead_letters)
            .where(dead_letters.c.id == row.id)
            .values(
                event=None,
                raw=ERASED,
                message=redact(row.message, quoted),
                traceback=redact(row.traceback, quoted),
            )
        )
        erased += 1
    return erased


def _quoted(held: str) -> list[str]:
    """What a body held as text names of a customer: the personal fields (a customer's, an
    address's, a sealed card's) of each innermost JSON object found whole in it."""
    values: list[str] = []
    for found in _INNERMOST.finditer(held):
        try:
            fields = json.loads(found.group(0))
        except ValueError:
            continue
        if isinstance(fields, dict):
            values += [v for k, v in fields.items() if k in _PERSONAL and isinstance(v, str)]
    return values


# A JSON object that holds no other: the customer, the address, the card, in an event's data.
_INNERMOST = re.compile(r"\{[^{}]*\}")
_PERSONAL = {"name", "email", "line1", "city", "postal_code", "token"}


def _erase_archives(archive_dir: Path, ids: set[str]) -> int:
    """Rewrite every outbox archive with the rows about ``ids`` erased; the relay appends
    nothing meanwhile (archives.locked). Returns the rows rewritten or dropped."""
    with archives.locked(archive_dir):
        return _rewrite_archives(archive_dir, ids)


def _rewrite_archives(archive_dir: Path, ids: set[str]) -> int:
    rewritten = 0
    for path in sorted(archive_dir.glob("*-outbox-*.jsonl")):
        lines = path.read_text("utf-8").splitlines()
        out = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                # A line torn by a relay stopped mid-write: not a row anyone can read back, and
                # it may hold what is to be erased. Dropped.
                rewritten += 1
                continue
            if isinstance(row, dict) and row.get("subject") in ids:
                row["event"] = erase_event(row.get("event"))
                rewritten += 1
            out.append(json.dumps(row, sort_keys=True))
        temporary = path.with_suffix(".jsonl.erasing")
        temporary.write_text("".join(line + "\n" for line in out), "utf-8")
        temporary.chmod(path.stat().st_mode & 0o777)  # as the operator left it
        temporary.replace(path)
    return rewritten
