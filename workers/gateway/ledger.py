"""The simulator's ledger: charges, stored declines, attempts and refunds in one SQLite file."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

LEDGER_FILE = "ledger.db"
# Requests queue on SQLite's single write lock; a few seconds covers any burst the simulator sees.
BUSY_TIMEOUT_MS = 10_000
POOL_SIZE = 4

metadata = MetaData()

charges = Table(
    "charges",
    metadata,
    Column("id", String, primary_key=True),
    Column("order_id", String, nullable=False, index=True),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String, nullable=False),
    Column("idempotency_key", String, nullable=False, unique=True),
    Column("brand", String, nullable=False),
    Column("last4", String(4), nullable=False),
    Column("created", String, nullable=False),
)

# A decline is an outcome too: kept so that a retry with the same key is declined the same way.
outcomes = Table(
    "outcomes",
    metadata,
    Column("idempotency_key", String, primary_key=True),
    Column("order_id", String, nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("code", String, nullable=False),
    Column("created", String, nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("idempotency_key", String, primary_key=True),
    Column("count", Integer, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String, primary_key=True),
    # UNIQUE: refunds are always full, so a charge can be refunded once only.
    Column("charge_id", String, ForeignKey("charges.id"), nullable=False, unique=True),
    Column("amount_cents", Integer, nullable=False),
    Column("idempotency_key", String, nullable=False, unique=True),
    Column("created", String, nullable=False),
)

# Charges whose refunds the issuer refuses (the test card cards.REFUND_REFUSED), with its code;
# a row deleted by ``allow_refunds`` (a test's fault control) lets refunds through again.
refund_refusals = Table(
    "refund_refusals",
    metadata,
    Column("charge_id", String, ForeignKey("charges.id"), primary_key=True),
    Column("code", String, nullable=False),
)


@dataclass(frozen=True)
class ChargeRequest:
    """What a charge asks for: a replay with the same key must ask for the same thing."""

    idempotency_key: str
    order_id: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class Charge:
    """A charge in the ledger, as the API shows it."""

    id: str
    order_id: str
    amount_cents: int
    currency: str
    status: str
    idempotency_key: str
    created: str
    brand: str
    last4: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decline:
    """A stored decline for one idempotency key."""

    idempotency_key: str
    order_id: str
    amount_cents: int
    currency: str
    code: str
    created: str


@dataclass(frozen=True)
class Refund:
    """A full refund of one charge."""

    id: str
    charge_id: str
    amount_cents: int
    idempotency_key: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "idempotency_key"}


Outcome: TypeAlias = Charge | Decline


class UnknownCharge(LookupError):
    """A refund names a charge the ledger never made."""


class AlreadyRefunded(Exception):
    """A refund with a new idempotency key names a charge that is refunded already."""


class RefundRefused(Exception):
    """The issuer refuses to take the charge's money back; ``code`` says why."""

    def __init__(self, charge_id: str, code: str) -> None:
        super().__init__(f"the issuer refuses refunds of {charge_id}: {code}")
        self.code = code


def asks_the_same(outcome: Outcome, request: ChargeRequest) -> bool:
    """Whether a stored outcome answers this request, or the key is being reused for another."""
    stored = (outcome.order_id, outcome.amount_cents, outcome.currency)
    return stored == (request.order_id, request.amount_cents, request.currency)


class Ledger:
    """The ledger file under a data directory; one instance is shared by all request threads."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._engine = _sqlite_engine(directory / LEDGER_FILE)
        with self._engine.begin() as conn:
            metadata.create_all(conn)

    def close(self) -> None:
        self._engine.dispose()

    def find_outcome(self, idempotency_key: str) -> Outcome | None:
        with self._engine.begin() as conn:
            return _find_outcome(conn, idempotency_key)

    def count_attempt(self, idempotency_key: str) -> int:
        """Count one more attempt for the key and say which attempt this is (from 1)."""
        upsert = sqlite_insert(attempts).values(idempotency_key=idempotency_key, count=1)
        upsert = upsert.on_conflict_do_update(
            index_elements=[attempts.c.idempotency_key],
            set_={"count": attempts.c.count + 1},
        )
        with self._engine.begin() as conn:
            conn.execute(upsert)
            query = select(attempts.c.count).where(attempts.c.idempotency_key == idempotency_key)
            return int(conn.execute(query).scalar_one())

    def record_charge(
        self,
        request: ChargeRequest,
        *,
        brand: str,
        last4: str,
        refund_refusal: str | None = None,
    ) -> tuple[Outcome, bool]:
        """Store a charge unless the key already has an outcome; say whether it was new. With
        ``refund_refusal`` (a code), every refund of it is refused until ``allow_refunds``."""
        charge = Charge(
            id=f"ch_{uuid.uuid4().hex}",
            order_id=request.order_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            status="succeeded",
            idempotency_key=request.idempotency_key,
            created=_now(),
            brand=brand,
            last4=last4,
        )
        return self._record_once(charge, refund_refusal)

    def record_decline(self, request: ChargeRequest, code: str) -> tuple[Outcome, bool]:
        """Store a decline unless the key already has an outcome; say whether it was new."""
        return self._record_once(Decline(**asdict(request), code=code, created=_now()))

    def charges_for(self, order_id: str | None = None) -> list[Charge]:
        query = select(charges).order_by(charges.c.created, charges.c.id)
        if order_id is not None:
            query = query.where(charges.c.order_id == order_id)
        with self._engine.begin() as conn:
            return [Charge(**row) for row in conn.execute(query).mappings()]

    def refund(self, *, charge_id: str, idempotency_key: str) -> tuple[Refund, bool]:
        """Refund a charge in full, or find the refund this key made before; say if it is new."""
        try:
            with self._engine.begin() as conn:
                return _refund(conn, charge_id, idempotency_key)
        except IntegrityError:
            stored = self._find_refund(idempotency_key)
            if stored is None:
                raise
            return stored, False

    def allow_refunds(self, charge_id: str) -> None:
        """The issuer takes the charge's money back from now on (a fault control for tests:
        the refusal a test card set is lifted)."""
        with self._engine.begin() as conn:
            conn.execute(delete(refund_refusals).where(refund_refusals.c.charge_id == charge_id))

    def _record_once(
        self, outcome: Outcome, refund_refusal: str | None = None
    ) -> tuple[Outcome, bool]:
        try:
            with self._engine.begin() as conn:
                answer, created = _insert_unless_known(conn, outcome)
                if created and isinstance(outcome, Charge) and refund_refusal is not None:
                    refusal = {"charge_id": outcome.id, "code": refund_refusal}
                    conn.execute(insert(refund_refusals), refusal)
                return answer, created
        except IntegrityError:
            # Only reachable if a writer skipped the look-up; the stored outcome is the answer.
            stored = self.find_outcome(outcome.idempotency_key)
            if stored is None:
                raise
            return stored, False

    def _find_refund(self, idempotency_key: str) -> Refund | None:
        with self._engine.begin() as conn:
            return _find_refund(conn, idempotency_key)


def _insert_unless_known(conn: Connection, outcome: Outcome) -> tuple[Outcome, bool]:
    # BEGIN IMMEDIATE serialises writers, so this look-up and the insert are one atomic step;
    # the UNIQUE constraint on the key still guards against a writer that skips the look-up.
    stored = _find_outcome(conn, outcome.idempotency_key)
    if stored is not None:
        return stored, False
    table = charges if isinstance(outcome, Charge) else outcomes
    conn.execute(insert(table), asdict(outcome))
    return outcome, True


def _refund(conn: Connection, charge_id: str, idempotency_key: str) -> tuple[Refund, bool]:
    stored = _find_refund(conn, idempotency_key)
    if stored is not None:
        return stored, False
    charge = conn.execute(select(charges).where(charges.c.id == charge_id)).mappings().first()
    if charge is None:
        raise UnknownCharge(charge_id)
    if charge["status"] == "refunded":
        raise AlreadyRefunded(charge_id)
    refused = select(refund_refusals.c.code).where(refund_refusals.c.charge_id == charge_id)
    code = conn.execute(refused).scalar()
    if code is not None:
        raise RefundRefused(charge_id, code)
    refund = Refund(
        id=f"re_{uuid.uuid4().hex}",
        charge_id=charge_id,
        amount_cents=charge["amount_cents"],
        idempotency_key=idempotency_key,
        created=_now(),
    )
    conn.execute(insert(refunds), asdict(refund))
    conn.execute(update(charges).where(charges.c.id == charge_id).values(status="refunded"))
    return refund, True


def _find_outcome(conn: Connection, key: str) -> Outcome | None:
    charge = _row_by_key(conn, charges, key)
    if charge is not None:
        return Charge(**charge)
    decline = _row_by_key(conn, outcomes, key)
    return None if decline is None else Decline(**decline)


def _find_refund(conn: Connection, key: str) -> Refund | None:
    row = _row_by_key(conn, refunds, key)
    return None if row is None else Refund(**row)


def _row_by_key(conn: Connection, table: Table, key: str) -> RowMapping | None:
    query = select(table).where(table.c.idempotency_key == key)
    return conn.execute(query).mappings().first()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _sqlite_engine(path: Path) -> Engine:
    # A small pool: opening a connection and setting its pragmas costs more than a charge's
    # transaction. `close()` disposes of it.
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from pysqlite, so that _on_begin decides how a transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL needs a lock another connection may hold.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: two requests with one key cannot both read
    # "no outcome yet" and then both insert, and no reader deadlocks upgrading to a writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")
