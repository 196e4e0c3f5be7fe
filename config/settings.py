"""One frozen Settings object, read from the environment; no I/O happens here."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

COMPONENTS = ("shop", "orders", "payments", "shipping", "notifications", "operations")
"""Every component that owns a database (operations keeps the dead letters)."""

QUEUES = ("shop", "orders", "payments", "shipping", "notifications")
"""One queue per component with subscribers; a task named ``<queue>.<handler>`` is routed to it."""

OBSERVER_QUEUES = ("notifications",)
"""The queues of components that only watch orders: they emit nothing the saga waits on, so a
message of theirs that is parked delays no order (no ``message.parked`` is written for it, and
its replay announces nothing); the operators see it in the dead letters like any other."""

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8020"
# Where customers reach the shop: the links in its mails start with it (`shoeshop up` sets it to
# the web's own address when it is unset).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
# The sender of the shop's mails. `.invalid` (RFC 2606) is nobody's domain: a development mail
# can never pass for a real shop's, and a production notifications worker refuses to start
# with it (workers.schema.guard).
DEV_MAIL_FROM = "Shoe shop <orders@shoeshop.invalid>"
# Seconds a parcel spends being packed before it leaves; a cancellation can stop it meanwhile.
# Zero by default: the simulated warehouse ships at once, which keeps latency honest in benches.
DEFAULT_PACKING_DELAY_S = 0.0
# Fifteen minutes: long enough for a slow bank, short enough that stock is not held all day.
DEFAULT_PAYMENT_TIMEOUT_S = 15 * 60
# Ten minutes: an order the orders component has not taken up by then (its order.placed lost,
# unreadable, or parked) is cancelled and its stock released, rather than held for ever.
DEFAULT_ACCEPT_TIMEOUT_S = 10 * 60
# Two days: a paid order whose parcel has not left by then is cancelled and refunded if
# shipping can still stop it (packing takes seconds to hours, SHOESHOP_PACKING_DELAY at most a
# day, which this must exceed).
DEFAULT_SHIP_TIMEOUT_S = 2 * 24 * 60 * 60
# A packed parcel leaves on the next second's sweep and the deadline sweep runs every 10 s: the
# shipping deadline leaves a minute past the packing delay at least.
SHIP_TIMEOUT_MARGIN_S = 60
# A week of published events stays in each outbox (what `shoeshop replay --to TASK` can re-send
# and the saga view shows); a day more of inbox rows, so an inbox row outlives every re-sending
# of its event (Settings checks it).
DEFAULT_OUTBOX_RETENTION_S = 7 * 24 * 60 * 60
DEFAULT_INBOX_RETENTION_S = 8 * 24 * 60 * 60
# The redelivery sweep looks at events published up to this long after redeliver_after_s
# (workers.operations.redelivery.WATCH): they must still be in their outbox by then.
REDELIVERY_WATCH_S = 10 * 60
# Attempts before a transiently failing message is parked. With the backoff below the last
# retry waits at most RETRY_MAX_DELAY_S, far under the Redis visibility timeout.
DEFAULT_MAX_RETRIES = 6
DEFAULT_RETRY_BASE_DELAY_S = 0.5
DEFAULT_RETRY_MAX_DELAY_S = 30.0
# How long Redis waits before handing a taken but unacknowledged message to another worker (a
# worker that was killed mid-task). It must exceed the longest task plus the longest retry
# countdown, because the worker holds a waiting retry unacknowledged too: 30 s + a 5 s gateway
# timeout, with room to spare. An hour (Celery's default) would hold a killed worker's orders
# that long.
DEFAULT_VISIBILITY_TIMEOUT_S = 120
# After this long, an event a subscriber has not applied (nor parked) is sent to it again: well
# past a whole retry budget, so a delivery still retrying is not doubled.
DEFAULT_REDELIVER_AFTER_S = 300
# A queue whose subscribers have left an event unapplied this long is stalled
# (shoeshop_pipeline_stalled): by then the redelivery sweep has re-sent it every 15 s for five
# minutes, so the subscriber takes nothing (or fails without parking) rather than being slow.
# Unset, it is twice SHOESHOP_REDELIVER_AFTER when that is longer (default_stall_after).
DEFAULT_STALL_AFTER_S = 600
# A worker whose queue has had messages ready this long while it received none with slots free
# reconnects its consumer, and exits for its supervisor when a second window passes the same way
# (workers.messaging.watchdog). Past kombu's own check of a silent Redis BRPOP connection (about
# 51 s), so the watchdog acts only where kombu did not; under RabbitMQ's heartbeat check (240 s).
DEFAULT_WATCHDOG_WINDOW_S = 90
GATEWAY_TIMEOUT_S = 5.0
# RabbitMQ's native delayed delivery counts whole seconds and refuses less than one, so there
# every retry waits at least this long (workers.messaging.consumer). The retry budget that
# SHOESHOP_REDELIVER_AFTER must exceed counts it on every broker: the bound then does not move
# with the broker, and on Redis it overstates the budget by at most a second a retry.
SHORTEST_RETRY_WAIT_S = 1.0

# What a development process runs with when SHOESHOP_SECRET_KEY or SHOESHOP_ADMIN_PASSWORD is
# unset; production refuses both (they are in this repository for anyone to read).
DEV_SECRET_KEY = "dev-only-secret-key"
DEV_ADMIN_PASSWORD = "admin"
# The shortest SHOESHOP_SECRET_KEY production accepts. Flask signs its session cookie and
# Flask-WTF its CSRF tokens with itsdangerous, which derives its HMAC key from SECRET_KEY by one
# plain hash, with no stretching ("not intended to make a complex key out of a short password:
# use large random secret keys"), so a short key can be guessed offline from any signed cookie
# or token. The checkout's idempotency fingerprint is an HMAC-SHA256 keyed with it too, and
# RFC 2104 asks for an HMAC key at least as long as the hash's output: 32 bytes for SHA-256.
# 32 characters are at least 32 bytes; `python -c "import secrets; print(secrets.token_hex(32))"`
# gives 64. Development keeps its short, well-known key.
MIN_SECRET_KEY_CHARS = 32

# SHOESHOP_RATE_LIMITS: "name=limit;name=limit", each limit "<count>/<period>" or
# "<count> per [<n>] <period>" (second, minute, hour, day: the syntax of the `limits` library
# flask-limiter uses), or "off". Per client address (shop.web.limits). admin_login counts the
# failed admin logins only: the sixth in a minute is refused. checkout counts every checkout
# (each an RSA encryption and a write), generous for a family behind one address.
DEFAULT_RATE_LIMITS = {"admin_login": "5/minute", "checkout": "20/minute"}
_RATE_LIMIT = re.compile(
    r"[0-9]{1,9}\s*(/|\s+per\s+)\s*([0-9]{1,9}\s+)?(second|minute|hour|day)s?", re.IGNORECASE
)

# The URLs each URL setting may take, by scheme.
GATEWAY_URL_SCHEMES = ("http", "https")
PUBLIC_URL_SCHEMES = ("http", "https")
# smtp:// upgrades to TLS with STARTTLS when the server offers it (port 25 unless the URL names
# one, such as 587 for submission); smtps:// speaks TLS from the first byte (port 465 unless
# named): workers.notifications.smtp.
SMTP_URL_SCHEMES = ("smtp", "smtps")
# workers.messaging.database turns postgresql:// and postgres:// into postgresql+psycopg://,
# the one driver installed (psycopg 3), and passes anything else to SQLAlchemy as it is. An
# sqlite:// URL would get past it, but would put all five components in one file, where their
# same-named tables (inbox, outbox, alembic_version) collide: SQLite is the default, one file
# per component under SHOESHOP_DATA_DIR, chosen by leaving SHOESHOP_DATABASE_URL unset.
DATABASE_URL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# config.celeryconfig sets queues up for RabbitMQ when the URL is one of kombu's AMQP schemes
# (workers.messaging.broker_dead.is_amqp), and for Redis otherwise; redis+socket:// is the
# embedded Redis's unix socket. Any other kombu transport would get Redis's settings.
REDIS_BROKER_SCHEMES = ("redis", "rediss", "redis+socket")
AMQP_BROKER_SCHEMES = ("amqp", "amqps", "pyamqp")
# The schemes whose path kombu reads as the Redis database number: empty, "/" (both database 0)
# or "/<number>"; anything else ("/abc", "/0/") kills the worker at start with kombu's "Database
# is int between 0 and limit - 1". The limit is the server's `databases` setting, 16 by
# default, so 0 to 15 unless the server says otherwise: only the server can refuse a number.
REDIS_DATABASE_SCHEMES = ("redis", "rediss")
# The broker URLs whose connections are encrypted, and then verified (certificate and host name).
TLS_BROKER_SCHEMES = ("amqps", "rediss")
_REDIS_DATABASE_PATH = re.compile(r"/?|/[0-9]+")
REDIS_DEFAULT_DATABASES = 16

# SHOESHOP_LOG_FORMAT: workers.messaging.logs writes JSON lines for "json" and text otherwise,
# reading the value without surrounding blanks and case-blind; Settings reads it the same way
# (so " JSON" is json), and refuses any other word, which would quietly have meant text.
LOG_FORMATS = ("text", "json")
DEFAULT_LOG_FORMAT = "text"

# Flower's basic auth. The Procfile hands Flower FLOWER_BASIC_AUTH="<user>:<password>"; Flower
# splits that option on "," into several "user:password" pairs (so a "," in the password would
# make two logins, one of them chosen by whoever wrote the password's tail) and compares each
# with the request's decoded credentials by hmac.compare_digest, which raises TypeError on a
# str that is not ASCII (so every request would fail). The whole "user:password" is compared,
# so a ":" in the user would let "a" + "b:c" log in as "a:b" + "c": the user has none.
# Unset, the user is DEFAULT_FLOWER_USER and `shoeshop up` generates a password in development
# (workers.launcher.flower_credentials); production must set the password.
DEFAULT_FLOWER_USER = "admin"


class Bounds(NamedTuple):
    """The values a numeric setting may take, both ends included, and what it counts."""

    low: float
    high: float
    unit: str

    def describe(self, kind: str) -> str:
        of = f" of {self.unit}" if self.unit else ""
        return f"a {kind} number{of} between {self.low} and {self.high}"


ONE_HOUR_S = 60 * 60
ONE_DAY_S = 24 * ONE_HOUR_S
# At least a second. At most ten years: what the 0.1.0 upgrade fixture sets to mean "never",
# and far from where placing time + timeout stops being a datetime (10**30 s is no timedelta).
# The same for each status's deadline (payment, acceptance, shipping).
PAYMENT_TIMEOUT_BOUNDS_S = Bounds(1, 10 * 365 * ONE_DAY_S, "seconds")
# 0 parks a message at its first transient fault. 100 retries at the longest delay are already
# four days of retrying; 2**attempt in the backoff stays far from a float's limit (2**1024).
MAX_RETRIES_BOUNDS = Bounds(0, 100, "retries")
# Both delays above zero: 0 or less turns the backoff into a tight loop against a failing
# service; under 10 ms it is no backoff at all. At most an hour: on Redis a waiting retry is
# held unacknowledged, so the visibility timeout (at most a day, below) must exceed it. A base
# above the max delay would never be used (Settings refuses it: the two are likely swapped).
RETRY_DELAY_BOUNDS_S = Bounds(0.01, ONE_HOUR_S, "seconds")
# A probability.
GATEWAY_FAULT_RATE_BOUNDS = Bounds(0, 1, "")
# Up to a minute: past the payments client's GATEWAY_TIMEOUT_S, so a hanging gateway can be
# simulated, without holding the simulator's request threads for longer than that.
GATEWAY_LATENCY_BOUNDS_MS = Bounds(0, 60_000, "milliseconds")
# 0 ships at once. At most a day of packing: longer, a paid order's stock waits on the shelf.
PACKING_DELAY_BOUNDS_S = Bounds(0, ONE_DAY_S, "seconds")
# At least a second; at most a day, the longest a killed worker's taken messages (visibility
# timeout) or an event the broker lost (redeliver-after) should wait to be handed on again. The
# visibility timeout must also exceed the longest retry delay plus a gateway call, and the
# redeliver-after the longest retry budget plus a gateway call (Settings).
VISIBILITY_TIMEOUT_BOUNDS_S = Bounds(1, ONE_DAY_S, "seconds")
REDELIVER_AFTER_BOUNDS_S = Bounds(1, ONE_DAY_S, "seconds")
# A minute at least (the redelivery sweep records every 15 s); two days at most, twice the
# longest redeliver-after.
STALL_AFTER_BOUNDS_S = Bounds(60, 2 * ONE_DAY_S, "seconds")
# 0 turns the watchdog off; up to an hour.
WATCHDOG_WINDOW_BOUNDS_S = Bounds(0, 3600, "seconds")

# How long the web waits for a request's body (a slow or stalled client holds a greenlet no
# longer than this; the headers have gunicorn's keep-alive deadline, 2 s): a second at least, at
# most five minutes. A checkout's body is a few hundred bytes.
READ_TIMEOUT_BOUNDS_S = Bounds(1, 300, "seconds")
DEFAULT_READ_TIMEOUT_S = 10

# SHOESHOP_CHAOS_REORDER: a test hook of the failure matrix (workers.messaging.chaos), off unless
# set: every process that publishes then delays, duplicates and so reorders the events it sends,
# decided from this seed. Unset, empty or 0: off; a whole number from 1: on, with that seed.
# Refused with SHOESHOP_ENV=production, so a deployment cannot start with it by mistake.
CHAOS_REORDER_MAX_SEED = 2**31 - 1

NUMERIC_SETTINGS: dict[str, Bounds] = {
    "SHOESHOP_PAYMENT_TIMEOUT": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_ACCEPT_TIMEOUT": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_SHIP_TIMEOUT": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_OUTBOX_RETENTION": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_INBOX_RETENTION": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_MAX_RETRIES": MAX_RETRIES_BOUNDS,
    "SHOESHOP_RETRY_BASE_DELAY": RETRY_DELAY_BOUNDS_S,
    "SHOESHOP_RETRY_MAX_DELAY": RETRY_DELAY_BOUNDS_S,
    "SHOESHOP_GATEWAY_FAULT_RATE": GATEWAY_FAULT_RATE_BOUNDS,
    "SHOESHOP_GATEWAY_LATENCY_MS": GATEWAY_LATENCY_BOUNDS_MS,
    "SHOESHOP_PACKING_DELAY": PACKING_DELAY_BOUNDS_S,
    "SHOESHOP_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT_BOUNDS_S,
    "SHOESHOP_REDELIVER_AFTER": REDELIVER_AFTER_BOUNDS_S,
    "SHOESHOP_STALL_AFTER": STALL_AFTER_BOUNDS_S,
    "SHOESHOP_WATCHDOG_WINDOW": WATCHDOG_WINDOW_BOUNDS_S,
    "SHOESHOP_READ_TIMEOUT": READ_TIMEOUT_BOUNDS_S,
}
"""Every numeric setting and its allowed values; a value outside them stops the process."""

# ASCII digits only: int() and float() also take "1_0", "١٢" and "nan", which no one means.
# Eighteen digits are far above every bound and keep int() away from its 4300-digit limit.
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_Number = TypeVar("_Number", int, float)


def duration_in_words(seconds: float) -> str:
    """A duration as an operator reads it: "8 days", "1.5 days", "11 hours", "11 minutes 40 s",
    "40 s" (the largest unit it reaches, days and hours to a tenth)."""
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size:
            count = round(seconds / size, 1)
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    minutes, rest = divmod(round(seconds), 60)
    if minutes:
        return f"{minutes} minute{'' if minutes == 1 else 's'}" + (f" {rest} s" if rest else "")
    return f"{rest} s"


def default_stall_after(redeliver_after_s: int) -> int:
    """SHOESHOP_STALL_AFTER when unset, in seconds: DEFAULT_STALL_AFTER_S, or twice the
    redeliver-after when that is longer (it must exceed it: Settings)."""
    return max(DEFAULT_STALL_AFTER_S, 2 * redeliver_after_s)


class ConfigurationError(Exception):
    """The environment holds a value the shop cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about where things are and how they behave."""

    data_dir: Path
    broker_url: str | None
    database_url: str | None
    # Not in the repr: a logged or printed Settings shows no secret.
    secret_key: str = field(repr=False)
    env: str
    admin_password: str = field(repr=False)
    gateway_url: str
    payment_timeout_s: int
    max_retries: int
    retry_base_delay_s: float
    retry_max_delay_s: float
    gateway_fault_rate: float
    gateway_latency_ms: int
    packing_delay_s: float
    visibility_timeout_s: int
    redeliver_after_s: int
    accept_timeout_s: int = DEFAULT_ACCEPT_TIMEOUT_S
    ship_timeout_s: int = DEFAULT_SHIP_TIMEOUT_S
    stall_after_s: int = DEFAULT_STALL_AFTER_S
    watchdog_window_s: int = DEFAULT_WATCHDOG_WINDOW_S
    outbox_retention_s: int = DEFAULT_OUTBOX_RETENTION_S
    inbox_retention_s: int = DEFAULT_INBOX_RETENTION_S
    # Where pruned outbox and inbox rows are kept as JSON lines; None: they are deleted only.
    archive_dir: Path | None = None
    # The file the relay touches on each pass of its loop, for the supervisor that watches it
    # (`shoeshop supervise --heartbeat PATH`, which sets it for its command); None: no heartbeat.
    heartbeat_file: Path | None = None
    log_format: str = DEFAULT_LOG_FORMAT
    # None when unset: Flower's user is then DEFAULT_FLOWER_USER, its password generated.
    flower_user: str | None = None
    flower_password: str | None = field(default=None, repr=False)
    # None when unset: `shoeshop up` then runs the local mail catcher and sets it; a
    # notifications worker refuses to start without one (workers.schema.guard).
    smtp_url: str | None = None
    mail_from: str = DEV_MAIL_FROM
    public_url: str = DEFAULT_PUBLIC_URL
    # (name, limit ("5/minute") or "off") for every name of DEFAULT_RATE_LIMITS; a tuple, so
    # Settings stays hashable.
    rate_limits: tuple[tuple[str, str], ...] = tuple(DEFAULT_RATE_LIMITS.items())
    # The proxies whose X-Forwarded-For is believed (addresses and networks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    read_timeout_s: int = DEFAULT_READ_TIMEOUT_S
    # The reordering hook's seed (SHOESHOP_CHAOS_REORDER); None: off, as it always is in production.
    chaos_reorder_seed: int | None = None
    # Whether psycopg may prepare statements on PostgreSQL (SHOESHOP_DATABASE_PREPARED_STATEMENTS,
    # on or off): off behind a pooler in transaction mode that cannot keep them (PgBouncer
    # before 1.21, or without max_prepared_statements; docs/deployment.md).
    database_prepared_statements: bool = True
    # The CA certificates (PEM) a TLS broker's certificate must chain to
    # (SHOESHOP_BROKER_CA_FILE); None: the system's store. Only with amqps:// or rediss://.
    broker_ca_file: Path | None = None

    def __repr__(self) -> str:
        """Every setting but the secrets, a password in the broker's or the database's URL
        shown as ***: a logged or printed Settings gives no credential away."""
        shown = {item.name: getattr(self, item.name) for item in fields(self) if item.repr}
        for name in ("broker_url", "database_url", "smtp_url"):
            if shown[name]:
                shown[name] = masked_url(shown[name])
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def embedded_broker(self) -> bool:
        """True when no broker URL is set and the embedded Redis under the data dir serves."""
        return self.broker_url is None

    @property
    def redis_socket(self) -> Path:
        """Where the embedded Redis listens: a unix socket, so no TCP port is ever assumed free."""
        return self.data_dir / "redis" / "redis.sock"

    def rate_limit(self, name: str) -> str | None:
        """The limit named (a name of DEFAULT_RATE_LIMITS), None when it is off."""
        value = dict(self.rate_limits)[name]
        return None if value == "off" else value

    @property
    def mail_dir(self) -> Path:
        """The Maildir where the local mail catcher keeps what it is sent (workers.mailcatcher),
        which the admin's mail pages read."""
        return self.data_dir / "mail"

    @property
    def broker_tls(self) -> bool:
        """True when the broker URL asks for TLS (amqps://, rediss://): its certificate and its
        host name are then checked (workers.messaging.broker_tls)."""
        return self.broker_url is not None and _scheme(self.broker_url) in TLS_BROKER_SCHEMES

    @property
    def effective_broker_url(self) -> str:
        if self.broker_url is not None:
            return self.broker_url
        return f"redis+socket://{self.redis_socket}"

    @property
    def longest_backoff_s(self) -> float:
        """The longest a message can spend waiting between its attempts: every retry's longest
        backoff (workers.messaging.consumer.backoff_delay without its jitter), at least
        SHORTEST_RETRY_WAIT_S each."""
        return sum(
            max(
                SHORTEST_RETRY_WAIT_S,
                min(self.retry_max_delay_s, self.retry_base_delay_s * 2.0**retry),
            )
            for retry in range(self.max_retries)
        )

    def __post_init__(self) -> None:
        self._check_secrets()
        if self.chaos_reorder_seed is not None and self.is_production:
            raise ConfigurationError(
                "SHOESHOP_CHAOS_REORDER is a test hook that delays and duplicates every event "
                "sent: unset it (or set it to 0) when SHOESHOP_ENV=production"
            )
        _check_flower_credentials(self.flower_user, self.flower_password)
        if self.log_format not in LOG_FORMATS:
            raise ConfigurationError(_log_format_refusal(self.log_format))
        _check_gateway_url(self.gateway_url)
        if self.broker_url is not None:
            _check_broker_url(self.broker_url)
        if self.broker_ca_file is not None:
            _check_broker_ca_file(self.broker_ca_file, self.broker_tls)
        if self.database_url is not None:
            _check_database_url(self.database_url)
        if self.smtp_url is not None:
            _check_smtp_url(self.smtp_url)
        _check_public_url(self.public_url)
        _check_mail_from(self.mail_from)
        if self.ship_timeout_s < self.packing_delay_s + SHIP_TIMEOUT_MARGIN_S:
            raise ConfigurationError(
                f"SHOESHOP_SHIP_TIMEOUT ({self.ship_timeout_s}s) must exceed "
                f"SHOESHOP_PACKING_DELAY ({self.packing_delay_s}s) by {SHIP_TIMEOUT_MARGIN_S}s "
                "or more, or a parcel would be stopped while it is packed or about to leave"
            )
        self._check_retention()
        if self.retry_base_delay_s > self.retry_max_delay_s:
            raise ConfigurationError(
                f"SHOESHOP_RETRY_BASE_DELAY ({self.retry_base_delay_s}s) must not exceed "
                f"SHOESHOP_RETRY_MAX_DELAY ({self.retry_max_delay_s}s)"
            )
        longest_wait = self.retry_max_delay_s + GATEWAY_TIMEOUT_S
        if self.visibility_timeout_s <= longest_wait:
            raise ConfigurationError(
                f"SHOESHOP_VISIBILITY_TIMEOUT ({self.visibility_timeout_s}s) must exceed the "
                f"longest retry delay plus a gateway call ({longest_wait:.0f}s), or Redis would "
                "hand a waiting retry to a second worker"
            )
        # The relay re-sends an event its subscriber has not applied after redeliver_after_s;
        # a delivery still working through its retries has not applied it either, and would be
        # doubled (harmless to the data, every consumer is idempotent, but it doubles the calls
        # on a service that is already failing).
        retry_budget = self.longest_backoff_s + GATEWAY_TIMEOUT_S
        if self.redeliver_after_s <= retry_budget:
            hint = ""
            if retry_budget >= REDELIVER_AFTER_BOUNDS_S.high:
                hint = (
                    f"; no value up to {REDELIVER_AFTER_BOUNDS_S.high} does, so lower "
                    "SHOESHOP_MAX_RETRIES or the retry delays"
                )
            raise ConfigurationError(
                f"SHOESHOP_REDELIVER_AFTER ({self.redeliver_after_s}s) must exceed the longest "
                f"retry budget, the backoff of SHOESHOP_MAX_RETRIES ({self.max_retries}) retries "
                f"from SHOESHOP_RETRY_BASE_DELAY ({self.retry_base_delay_s}s) up to "
                f"SHOESHOP_RETRY_MAX_DELAY ({self.retry_max_delay_s}s), at least "
                f"{SHORTEST_RETRY_WAIT_S:g}s each, plus a gateway call "
                f"({_seconds(retry_budget)}s), or the relay would re-send a delivery that is "
                f"still retrying{hint}"
            )

        if self.stall_after_s <= self.redeliver_after_s:
            raise ConfigurationError(
                f"SHOESHOP_STALL_AFTER ({self.stall_after_s}s) must exceed "
                f"SHOESHOP_REDELIVER_AFTER ({self.redeliver_after_s}s): an event is found "
                "unapplied only once it is that old, and is re-sent before its queue counts as "
                "stalled"
            )

    def _check_retention(self) -> None:
        """An inbox row must outlive every re-sending of its event (``replay --to`` re-sends
        anything still in an outbox), and the redelivery sweep must find in the outboxes the
        events it watches."""
        if self.inbox_retention_s <= self.outbox_retention_s:
            raise ConfigurationError(
                f"SHOESHOP_INBOX_RETENTION ({self.inbox_retention_s}s) must exceed "
                f"SHOESHOP_OUTBOX_RETENTION ({self.outbox_retention_s}s): an event still in an "
                "outbox can be sent again, and its inbox row is what stops a second effect"
            )
        if self.inbox_retention_s <= self.visibility_timeout_s:
            raise ConfigurationError(
                f"SHOESHOP_INBOX_RETENTION ({self.inbox_retention_s}s) must exceed "
                f"SHOESHOP_VISIBILITY_TIMEOUT ({self.visibility_timeout_s}s): a message applied "
                "by a worker that died before acknowledging it comes back after that timeout, "
                "and its inbox row is what stops a second effect"
            )
        watched = self.redeliver_after_s + REDELIVERY_WATCH_S
        if self.outbox_retention_s <= watched:
            raise ConfigurationError(
                f"SHOESHOP_OUTBOX_RETENTION ({self.outbox_retention_s}s) must exceed "
                f"SHOESHOP_REDELIVER_AFTER plus the redelivery sweep's watch ({watched}s), or "
                "an event the broker lost could be pruned before it is sent again"
            )

    def _check_secrets(self) -> None:
        """Blank secrets are refused everywhere (an empty admin password opens /admin to a
        request without credentials, an empty key signs nothing); production also refuses the
        development values and a short secret key. No message shows a secret."""
        for name, value, wanted in (
            ("SHOESHOP_SECRET_KEY", self.secret_key, "a random string"),
            ("SHOESHOP_ADMIN_PASSWORD", self.admin_password, "a password"),
        ):
            if not value.strip():
                got = "an empty value" if value == "" else f"{len(value)} blank character(s)"
                raise ConfigurationError(
                    f"{name} must be {wanted} with something other than whitespace in it (or "
                    f"unset, in development only, for the development value), not {got}"
                )
        if not self.is_production:
            return
        for name, value, default in (
            ("SHOESHOP_SECRET_KEY", self.secret_key, DEV_SECRET_KEY),
            ("SHOESHOP_ADMIN_PASSWORD", self.admin_password, DEV_ADMIN_PASSWORD),
        ):
            if value == default:
                raise ConfigurationError(
                    f"{name} must be set when SHOESHOP_ENV=production, to something other than "
                    "the development value"
                )
        if len(self.secret_key) < MIN_SECRET_KEY_CHARS:
            raise ConfigurationError(
                f"SHOESHOP_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters when "
                f"SHOESHOP_ENV=production, not {len(self.secret_key)}: a random one is "
                '`python -c "import secrets; print(secrets.token_hex(32))"`'
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("SHOESHOP_ENV", "development")
        if mode not in ("development", "production"):
            raise ConfigurationError(
                f"SHOESHOP_ENV must be 'development' or 'production', not {mode!r}"
            )
        if mode == "production":
            _refuse_placeholders(env)
        redeliver_after_s = _int(env, "SHOESHOP_REDELIVER_AFTER", DEFAULT_REDELIVER_AFTER_S)
        return cls(
            data_dir=Path(env.get("SHOESHOP_DATA_DIR", "var")).resolve(),
            broker_url=env.get("SHOESHOP_BROKER_URL") or None,
            database_url=env.get("SHOESHOP_DATABASE_URL") or None,
            secret_key=env.get("SHOESHOP_SECRET_KEY", DEV_SECRET_KEY),
            env=mode,
            admin_password=env.get("SHOESHOP_ADMIN_PASSWORD", DEV_ADMIN_PASSWORD),
            gateway_url=_gateway_url(env),
            payment_timeout_s=_int(env, "SHOESHOP_PAYMENT_TIMEOUT", DEFAULT_PAYMENT_TIMEOUT_S),
            max_retries=_int(env, "SHOESHOP_MAX_RETRIES", DEFAULT_MAX_RETRIES),
            retry_base_delay_s=_float(env, "SHOESHOP_RETRY_BASE_DELAY", DEFAULT_RETRY_BASE_DELAY_S),
            retry_max_delay_s=_float(env, "SHOESHOP_RETRY_MAX_DELAY", DEFAULT_RETRY_MAX_DELAY_S),
            gateway_fault_rate=_float(env, "SHOESHOP_GATEWAY_FAULT_RATE", 0.0),
            gateway_latency_ms=_int(env, "SHOESHOP_GATEWAY_LATENCY_MS", 0),
            packing_delay_s=_float(env, "SHOESHOP_PACKING_DELAY", DEFAULT_PACKING_DELAY_S),
            visibility_timeout_s=_int(
                env, "SHOESHOP_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT_S
            ),
            redeliver_after_s=redeliver_after_s,
            stall_after_s=_int(env, "SHOESHOP_STALL_AFTER", default_stall_after(redeliver_after_s)),
            watchdog_window_s=_int(env, "SHOESHOP_WATCHDOG_WINDOW", DEFAULT_WATCHDOG_WINDOW_S),
            accept_timeout_s=_int(env, "SHOESHOP_ACCEPT_TIMEOUT", DEFAULT_ACCEPT_TIMEOUT_S),
            ship_timeout_s=_int(env, "SHOESHOP_SHIP_TIMEOUT", DEFAULT_SHIP_TIMEOUT_S),
            outbox_retention_s=_int(env, "SHOESHOP_OUTBOX_RETENTION", DEFAULT_OUTBOX_RETENTION_S),
            inbox_retention_s=_int(env, "SHOESHOP_INBOX_RETENTION", DEFAULT_INBOX_RETENTION_S),
            archive_dir=Path(env["SHOESHOP_ARCHIVE_DIR"]).resolve()
            if env.get("SHOESHOP_ARCHIVE_DIR")
            else None,
            heartbeat_file=_heartbeat_file(env),
            log_format=_log_format(env),
            flower_user=env.get("SHOESHOP_FLOWER_USER"),
            flower_password=env.get("SHOESHOP_FLOWER_PASSWORD"),
            rate_limits=_rate_limits(env.get("SHOESHOP_RATE_LIMITS", "")),
            trusted_proxies=_trusted_proxies(env.get("SHOESHOP_TRUSTED_PROXIES", "")),
            read_timeout_s=_int(env, "SHOESHOP_READ_TIMEOUT", DEFAULT_READ_TIMEOUT_S),
            chaos_reorder_seed=_chaos_reorder_seed(env.get("SHOESHOP_CHAOS_REORDER", "")),
            database_prepared_statements=_on_or_off(env, "SHOESHOP_DATABASE_PREPARED_STATEMENTS"),
            broker_ca_file=Path(env["SHOESHOP_BROKER_CA_FILE"]).resolve()
            if env.get("SHOESHOP_BROKER_CA_FILE")
            else None,
            smtp_url=env.get("SHOESHOP_SMTP_URL") or None,
            mail_from=env.get("SHOESHOP_MAIL_FROM") or DEV_MAIL_FROM,
            public_url=_public_url(env),
        )


# What deploy/shoeshop.env.example writes where a password or secret goes.
PLACEHOLDER = "CHANGE-ME"


def _refuse_placeholders(env: dict[str, str]) -> None:
    """In production, a SHOESHOP_* or FLOWER_* value still holding the example file's
    placeholder (a password in a URL, Flower's login) is refused, naming the variable only."""
    left = sorted(
        name
        for name, value in env.items()
        if name.startswith(("SHOESHOP_", "FLOWER_")) and PLACEHOLDER in value
    )
    if left:
        raise ConfigurationError(
            f"{', '.join(left)} still hold{'s' if len(left) == 1 else ''} the example's "
            f"{PLACEHOLDER}: put the real passwords in when SHOESHOP_ENV=production"
        )


def _heartbeat_file(env: dict[str, str]) -> Path | None:
    """SHOESHOP_HEARTBEAT_FILE: a file's path (relative ones from the working directory), or
    unset (empty) for none. A blank value or one ending in a separator names no file: touching
    it would fail on every pass, and the supervisor would kill a relay that runs."""
    raw = env.get("SHOESHOP_HEARTBEAT_FILE", "")
    if raw == "":
        return None
    if not raw.strip() or raw.endswith(("/", os.sep)):
        raise ConfigurationError(
            "SHOESHOP_HEARTBEAT_FILE must be the path of a file (the relay touches it on each "
            f"pass of its loop), or unset for none, not {raw!r}"
        )
    return Path(raw).resolve()


def _log_format(env: dict[str, str]) -> str:
    # Read as workers.messaging.logs reads it; checked before it is trimmed and lowered, so
    # that a refusal shows what was set. Empty is unset, as for every other setting.
    raw = env.get("SHOESHOP_LOG_FORMAT", "")
    value = raw.strip().lower()
    if raw == "":
        return DEFAULT_LOG_FORMAT
    if value not in LOG_FORMATS:
        raise ConfigurationError(_log_format_refusal(raw))
    return value


def _log_format_refusal(raw: str) -> str:
    return (
        "SHOESHOP_LOG_FORMAT must be 'text' or 'json' (in any case, blanks around it ignored), "
        f"or unset for {DEFAULT_LOG_FORMAT!r}, not {raw!r}"
    )


def _printable_ascii(value: str) -> bool:
    return all(" " <= char <= "~" for char in value)


def _check_flower_credentials(user: str | None, password: str | None) -> None:
    """A Flower user and password Flower's basic auth reads as one login (see
    DEFAULT_FLOWER_USER). The user may be shown; the password never is, not even in part."""
    if user is not None:
        fault = None
        if user == "":
            fault = "it is empty"
        elif not _printable_ascii(user):
            fault = "it holds a character that is not printable ASCII"
        elif ":" in user or "," in user:
            fault = "it holds a ':' or a ','"
        if fault is not None:
            raise ConfigurationError(
                "SHOESHOP_FLOWER_USER must be printable ASCII without ':' or ',' (Flower reads "
                "'<user>:<password>' pairs separated by ','), or unset for "
                f"{DEFAULT_FLOWER_USER!r}, not {user!r}: {fault}"
            )
    if password is not None:
        fault = None
        if not password.strip():
            fault = "it is empty" if password == "" else f"it is {len(password)} blank character(s)"
        elif not _printable_ascii(password):
            fault = "it holds a character that is not printable ASCII"
        elif "," in password:
            fault = "it holds a ','"
        if fault is not None:
            raise ConfigurationError(
                "SHOESHOP_FLOWER_PASSWORD must be printable ASCII without ',' (Flower splits "
                "its logins on ',' and compares them as ASCII) with something other than blanks "
                "in it, or unset (`shoeshop up` then generates one, in development only); the "
                f"value set is not shown: {fault}"
            )


def _gateway_url(env: dict[str, str]) -> str:
    # Checked before its trailing slashes go, so that a refusal shows what was set (Settings
    # checks the result again).
    url = env.get("SHOESHOP_GATEWAY_URL", DEFAULT_GATEWAY_URL)
    _check_gateway_url(url)
    return url.rstrip("/")


def _rate_limits(raw: str) -> tuple[tuple[str, str], ...]:
    """The defaults, with what SHOESHOP_RATE_LIMITS changes; raises ConfigurationError naming
    the entry that is wrong."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for entry in (part.strip() for part in raw.split(";")):
        if not entry:
            continue
        name, sep, value = (piece.strip() for piece in entry.partition("="))
        fault = None
        if not sep:
            fault = "it is no name=limit"
        elif name not in DEFAULT_RATE_LIMITS:
            fault = f"{name!r} is not one of {', '.join(DEFAULT_RATE_LIMITS)}"
        elif value.lower() != "off" and not _RATE_LIMIT.fullmatch(value):
            fault = f"{value!r} is no limit such as 5/minute or 100 per hour, nor off"
        if fault is not None:
            raise ConfigurationError(
                "SHOESHOP_RATE_LIMITS must be name=limit pairs separated by ';' (names: "
                f"{', '.join(DEFAULT_RATE_LIMITS)}; a limit: 5/minute, 100 per hour, or off), "
                f"not {raw!r}: in {entry!r}, {fault}"
            )
        limits[name] = "off" if value.lower() == "off" else value
    return tuple(limits.items())


def _trusted_proxies(raw: str) -> tuple[str, ...]:
    """Addresses and networks (CIDR), separated by ','; raises ConfigurationError."""
    import ipaddress

    found = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            found.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError as exc:
            raise ConfigurationError(
                "SHOESHOP_TRUSTED_PROXIES must be IP addresses or networks (10.0.0.0/8) "
                f"separated by ',', not {raw!r}: {exc}"
            ) from None
    return tuple(found)


def _chaos_reorder_seed(raw: str) -> int | None:
    """The reordering hook's seed, None when it is off (unset, empty or 0); raises
    ConfigurationError for anything but a whole number up to CHAOS_REORDER_MAX_SEED."""
    if raw == "":
        return None
    value = int(raw) if re.fullmatch(r"[0-9]{1,10}", raw.strip()) else None
    if value is None or value > CHAOS_REORDER_MAX_SEED:
        raise ConfigurationError(
            "SHOESHOP_CHAOS_REORDER must be unset or 0 (off), or a seed from 1 to "
            f"{CHAOS_REORDER_MAX_SEED} (on: a test hook that delays and duplicates events), "
            f"not {raw!r}"
        )
    return value or None


def _on_or_off(env: dict[str, str], name: str, default: bool = True) -> bool:
    """A switch: ``on`` or ``off`` (any case; empty is unset, the default); raises
    ConfigurationError naming the variable for anything else."""
    raw = env.get(name, "")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ConfigurationError(f"{name} must be 'on' or 'off', not {raw!r}")
    return value == "on"


def _public_url(env: dict[str, str]) -> str:
    # Checked before its trailing slashes go, as the gateway's.
    url = env.get("SHOESHOP_PUBLIC_URL") or DEFAULT_PUBLIC_URL
    _check_public_url(url)
    return url.rstrip("/")


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    return _checked(name, raw, int(raw) if _WHOLE.fullmatch(raw.strip()) else None, "whole")


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    # "1e999" matches and reads as inf, which no bound allows.
    return _checked(name, raw, float(raw) if _DECIMAL.fullmatch(raw.strip()) else None, "finite")


def _checked(name: str, raw: str, value: _Number | None, kind: str) -> _Number:
    bounds = NUMERIC_SETTINGS[name]
    if value is None or not bounds.low <= value <= bounds.high:
        raise ConfigurationError(f"{name} must be {bounds.describe(kind)}, not {raw!r}")
    return value


def _seconds(value: float) -> str:
    """A number of seconds as a message shows it: 36.5, 305, 0.01."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def masked_url(url: str) -> str:
    """The URL as a message may show it: a password in it (scheme://user:password@host, or a
    ``password=`` query parameter, which libpq reads too) is replaced by ***, whatever else is
    wrong with the URL."""
    url = _PASSWORD_PARAMETER.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    if not sep or not at or not colon:
        return url
    return f"{scheme}://{user}:***@{place}"


_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _scheme_fault(url: str, schemes: tuple[str, ...]) -> str | None:
    """What makes ``url`` no URL of one of ``schemes``, or None."""
    if not url.strip():
        return "it is empty" if url == "" else "it is blank"
    scheme, sep, _rest = url.partition("://")
    if not sep:
        return "it has no scheme://"
    if url != url.strip():
        return "it starts or ends with whitespace"
    if not url.isprintable():
        return "it holds control characters"
    if scheme not in schemes:
        return f"{scheme}:// is not one of them"
    return None


def _place_fault(url: str, *, needs_host: bool) -> str | None:
    """What makes the host and port of ``url`` (scheme://host:port/…) unusable, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed [ of an IPv6 address, or a port that is no number
        if "IPv6" in str(exc):
            return "its host is not one"
        port = 0
    if port == 0:
        return "its port is not a number from 1 to 65535"
    host = parts.hostname or ""
    if needs_host and not host:
        return "it has no host"
    if any(char.isspace() for char in host):
        return "its host holds blanks"
    return None


def _check_gateway_url(url: str) -> None:
    fault = _scheme_fault(url, GATEWAY_URL_SCHEMES) or _place_fault(url, needs_host=True)
    if fault is None and ("?" in url or "#" in url):
        fault = "the client adds its paths to it, so it can have no query or fragment"
    if fault is not None:
        raise ConfigurationError(
            "SHOESHOP_GATEWAY_URL must be an http:// or https:// URL with a host (and a port "
            "from 1 to 65535 if it names one; unset, it is "
            f"{DEFAULT_GATEWAY_URL}), not {masked_url(url)!r}: {fault}"
        )


def _check_public_url(url: str) -> None:
    fault = _scheme_fault(url, PUBLIC_URL_SCHEMES) or _place_fault(url, needs_host=True)
    if fault is None and ("?" in url or "#" in url):
        fault = "the mails add the order's path to it, so it can have no query or fragment"
    elif fault is None and "@" in url.partition("://")[2].partition("/")[0]:
        fault = "it holds a user or password, which every mail's links would show"
    if fault is not None:
        raise ConfigurationError(
            "SHOESHOP_PUBLIC_URL must be the http:// or https:// address customers reach the "
            f"shop at (unset, it is {DEFAULT_PUBLIC_URL}), not {masked_url(url)!r}: {fault}"
        )


def _check_smtp_url(url: str) -> None:
    fault = _scheme_fault(url, SMTP_URL_SCHEMES) or _place_fault(url, needs_host=True)
    if fault is None and urlsplit(url).path not in ("", "/"):
        fault = "it names a path, which SMTP has no use for"
    elif fault is None and ("?" in url or "#" in url):
        fault = "it has a query or a fragment, which would be ignored"
    if fault is not None:
        raise ConfigurationError(
            "SHOESHOP_SMTP_URL must be smtp://[user:password@]host[:port] (STARTTLS when the "
            "server offers it) or smtps://… (TLS at once), or unset for the local mail catcher "
            f"`shoeshop up` runs, not {masked_url(url)!r}: {fault}"
        )


def _check_mail_from(value: str) -> None:
    # Parsed as the From header it becomes, by the standard library's RFC 5322 parser.
    from email.message import EmailMessage

    fault = None
    if not value.isprintable():
        fault = "it holds control characters"
    else:
        header = EmailMessage()
        header["From"] = value
        parsed = header["From"]
        addresses = parsed.addresses
        if parsed.defects:
            fault = f"it does not parse ({parsed.defects[0]})"
        elif len(addresses) != 1:
            fault = f"it names {len(addresses)} addresses, not one"
        elif not addresses[0].username or not addresses[0].domain:
            fault = "its address needs a name and a domain"
    if fault is not None:
        raise ConfigurationError(
            "SHOESHOP_MAIL_FROM must be the sender of the shop's mails, 'Name <address>' or an "
            f"address (unset, in development only, {DEV_MAIL_FROM!r}), not {value!r}: {fault}"
        )


def _check_broker_url(url: str) -> None:
    schemes = REDIS_BROKER_SCHEMES + AMQP_BROKER_SCHEMES
    # kombu takes a list of brokers to fail over between, separated by ";".
    urls = url.split(";")
    fault = next(
        (
            fault
            for one in urls
            if (
                fault := _scheme_fault(one, schemes)
                or _place_fault(one, needs_host=False)
                or _redis_database_fault(one)
                or _tls_query_fault(one)
            )
        ),
        None,
    )
    if fault is None and len({_scheme(one) in AMQP_BROKER_SCHEMES for one in urls}) > 1:
        fault = "it mixes Redis and RabbitMQ"
    if fault is None and len({_scheme(one) in TLS_BROKER_SCHEMES for one in urls}) > 1:
        # One set of TLS options serves every URL of the list: a failover to a plain URL
        # would drop the encryption without a word.
        fault = "it mixes TLS (amqps://, rediss://) and plain URLs"
    if fault is not None:
        if len(urls) > 1 and any(
            _scheme_fault(one, schemes) == "it has no scheme://" for one in urls
        ):
            fault += (
                " (a ';' separates the URLs of a failover list: in a password, write it as %3B)"
            )
        raise ConfigurationError(
            "SHOESHOP_BROKER_URL must be a Redis URL (redis://, rediss://, redis+socket://) or a "
            "RabbitMQ one (amqp://, amqps://, pyamqp://), or unset for the embedded Redis, not "
            f"{_masked_urls(url)!r}: {fault}"
        )


# scheme://user:password@: the password runs to the last @ before the next URL of a failover
# list, so a ';' inside a password (which splits the list) is masked with it.
_LIST_PASSWORD = re.compile(
    r"(://[^:/@;]*:).*?(@)(?=[^@]*?(?:;[a-z][a-z0-9+.-]*://|$))", re.IGNORECASE
)


def _masked_urls(value: str) -> str:
    """``value``, a URL or a ';'-separated list of them, with every password shown as ***, even
    one that holds a ';' (masked_url of each piece would miss it: the split cuts it in two)."""
    return _LIST_PASSWORD.sub(r"\1***\2", _PASSWORD_PARAMETER.sub(r"\1***", value))


def _tls_query_fault(url: str) -> str | None:
    """What TLS option the query of ``url`` sets, or None. kombu and redis-py let the URL's
    ``ssl`` and ``ssl_*`` parameters override the options the shop sets (certificate and host
    name checked: workers.messaging.broker_tls), and would turn the checks off without a word."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    names = sorted({name for name, _ in query if name.lower().partition("_")[0] == "ssl"})
    if not names:
        return None
    return (
        f"its query sets TLS options ({', '.join(names)}): TLS is chosen by the scheme (amqps://, "
        "rediss://) and always checks the certificate and the host name; name a private CA "
        "with SHOESHOP_BROKER_CA_FILE"
    )


def _scheme(url: str) -> str:
    """The scheme of ``url``, or of the first URL of a ``;``-separated failover list."""
    return url.partition("://")[0].strip()


def _check_broker_ca_file(path: Path, tls: bool) -> None:
    if not tls:
        raise ConfigurationError(
            f"SHOESHOP_BROKER_CA_FILE ({str(path)!r}) is set but SHOESHOP_BROKER_URL does not "
            "use TLS: use amqps:// or rediss:// URLs, or unset SHOESHOP_BROKER_CA_FILE"
        )
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:  # before OSError, of which it is a kind
        raise ConfigurationError(
            f"SHOESHOP_BROKER_CA_FILE ({str(path)!r}) holds no CA certificate in PEM form: "
            f"{exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"SHOESHOP_BROKER_CA_FILE ({str(path)!r}) cannot be read: {exc.strerror or exc}"
        ) from None


def _redis_database_fault(url: str) -> str | None:
    """What makes the path of a redis:// or rediss:// ``url`` no database number, or None."""
    if url.partition("://")[0] not in REDIS_DATABASE_SCHEMES:
        return None
    path = urlsplit(url).path
    if _REDIS_DATABASE_PATH.fullmatch(path):
        return None
    return (
        f"its path {path!r} is no Redis database: it must be empty, '/' or '/' and a number in "
        f"ASCII digits (0 to {REDIS_DEFAULT_DATABASES - 1} with Redis' default `databases "
        f"{REDIS_DEFAULT_DATABASES}`)"
    )


def _check_database_url(url: str) -> None:
    fault = _scheme_fault(url, DATABASE_URL_SCHEMES)
    if fault is None:
        fault = _sqlalchemy_fault(url)
    elif url.startswith(("sqlite:", "sqlite+")):
        fault = (
            "one SQLite URL would put every component in one file; unset it for one SQLite file "
            "per component under SHOESHOP_DATA_DIR"
        )
    if fault is not None:
        raise ConfigurationError(
            "SHOESHOP_DATABASE_URL must be a PostgreSQL URL (postgresql://, postgres:// or "
            "postgresql+psycopg://), or unset for SQLite files under SHOESHOP_DATA_DIR, not "
            f"{masked_url(url)!r}: {fault}"
        )


def _sqlalchemy_fault(url: str) -> str | None:
    """What SQLAlchemy, which opens the databases with it, finds wrong with ``url``, or None.
    Its own parser, not urlsplit: it reads some URLs differently (a password with a "/")."""
    # Imported here: SQLAlchemy costs a process megabytes, and this runs only when the variable
    # is set, mostly in processes that then open their databases with it anyway.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "SQLAlchemy cannot read it"
    except ValueError:  # a port that is no number, an unclosed [ of an IPv6 address
        return "SQLAlchemy cannot read its host and port"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return "its port is not a number from 1 to 65535"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use."""
    return Settings.from_env()
