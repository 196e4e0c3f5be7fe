"""One frozen Settings object, read from the environment; no I/O happens here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, TypeVar

COMPONENTS = ("shop", "orders", "payments", "shipping", "operations")
"""Every component that owns a database (operations keeps the dead letters)."""

QUEUES = ("shop", "orders", "payments", "shipping")
"""One queue per component with subscribers; a task named ``<queue>.<handler>`` is routed to it."""

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8020"
# Seconds a parcel spends being packed before it leaves; a cancellation can stop it meanwhile.
# Zero by default: the simulated warehouse ships at once, which keeps latency honest in benches.
DEFAULT_PACKING_DELAY_S = 0.0
# Fifteen minutes: long enough for a slow bank, short enough that stock is not held all day.
DEFAULT_PAYMENT_TIMEOUT_S = 15 * 60
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
GATEWAY_TIMEOUT_S = 5.0


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
# visibility timeout must also exceed the longest retry delay plus a gateway call (Settings).
VISIBILITY_TIMEOUT_BOUNDS_S = Bounds(1, ONE_DAY_S, "seconds")
REDELIVER_AFTER_BOUNDS_S = Bounds(1, ONE_DAY_S, "seconds")

NUMERIC_SETTINGS: dict[str, Bounds] = {
    "SHOESHOP_PAYMENT_TIMEOUT": PAYMENT_TIMEOUT_BOUNDS_S,
    "SHOESHOP_MAX_RETRIES": MAX_RETRIES_BOUNDS,
    "SHOESHOP_RETRY_BASE_DELAY": RETRY_DELAY_BOUNDS_S,
    "SHOESHOP_RETRY_MAX_DELAY": RETRY_DELAY_BOUNDS_S,
    "SHOESHOP_GATEWAY_FAULT_RATE": GATEWAY_FAULT_RATE_BOUNDS,
    "SHOESHOP_GATEWAY_LATENCY_MS": GATEWAY_LATENCY_BOUNDS_MS,
    "SHOESHOP_PACKING_DELAY": PACKING_DELAY_BOUNDS_S,
    "SHOESHOP_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT_BOUNDS_S,
    "SHOESHOP_REDELIVER_AFTER": REDELIVER_AFTER_BOUNDS_S,
}
"""Every numeric setting and its allowed values; a value outside them stops the process."""

# ASCII digits only: int() and float() also take "1_0", "١٢" and "nan", which no one means.
# Eighteen digits are far above every bound and keep int() away from its 4300-digit limit.
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_Number = TypeVar("_Number", int, float)


class ConfigurationError(Exception):
    """The environment holds a value the shop cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about where things are and how they behave."""

    data_dir: Path
    broker_url: str | None
    database_url: str | None
    secret_key: str
    env: str
    admin_password: str
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

    @property
    def effective_broker_url(self) -> str:
        if self.broker_url is not None:
            return self.broker_url
        return f"redis+socket://{self.redis_socket}"

    def __post_init__(self) -> None:
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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("SHOESHOP_ENV", "development")
        if mode not in ("development", "production"):
            raise ConfigurationError(
                f"SHOESHOP_ENV must be 'development' or 'production', not {mode!r}"
            )
        return cls(
            data_dir=Path(env.get("SHOESHOP_DATA_DIR", "var")).resolve(),
            broker_url=env.get("SHOESHOP_BROKER_URL") or None,
            database_url=env.get("SHOESHOP_DATABASE_URL") or None,
            secret_key=env.get("SHOESHOP_SECRET_KEY", "dev-only-secret-key"),
            env=mode,
            admin_password=env.get("SHOESHOP_ADMIN_PASSWORD", "admin"),
            gateway_url=env.get("SHOESHOP_GATEWAY_URL", DEFAULT_GATEWAY_URL).rstrip("/"),
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
            redeliver_after_s=_int(env, "SHOESHOP_REDELIVER_AFTER", DEFAULT_REDELIVER_AFTER_S),
        )


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use."""
    return Settings.from_env()
