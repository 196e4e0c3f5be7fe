"""One frozen Settings object, read from the environment; no I/O happens here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once on first use."""
    return Settings.from_env()
