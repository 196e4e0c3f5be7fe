"""Every setting is checked when it is read. Numbers: finite, ASCII digits, inside their bounds
and consistent with the others. Secrets: never blank, and in production neither the development
values nor a short secret key. URLs: a scheme the code supports, a host and port that can be.
A refusal names the variable, what it got (never a secret) and what is allowed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import (
    DEV_ADMIN_PASSWORD,
    DEV_SECRET_KEY,
    MIN_SECRET_KEY_CHARS,
    NUMERIC_SETTINGS,
    ConfigurationError,
    Settings,
)
from tests.support.certificates import make_certificates
from workers.launcher import flower_credentials
from workers.messaging.consumer import backoff_delay
from workers.messaging.logs import json_requested

# Each numeric variable, the Settings field it fills, and a valid value of at least two adjacent
# digits (so that an underscore can go between them).
FIELDS = {
    "SHOESHOP_PAYMENT_TIMEOUT": ("payment_timeout_s", "900"),
    "SHOESHOP_MAX_RETRIES": ("max_retries", "10"),
    "SHOESHOP_RETRY_BASE_DELAY": ("retry_base_delay_s", "0.25"),
    "SHOESHOP_RETRY_MAX_DELAY": ("retry_max_delay_s", "30"),
    "SHOESHOP_GATEWAY_FAULT_RATE": ("gateway_fault_rate", "0.25"),
    "SHOESHOP_GATEWAY_LATENCY_MS": ("gateway_latency_ms", "150"),
    "SHOESHOP_PACKING_DELAY": ("packing_delay_s", "30"),
    "SHOESHOP_VISIBILITY_TIMEOUT": ("visibility_timeout_s", "120"),
    "SHOESHOP_REDELIVER_AFTER": ("redeliver_after_s", "300"),
    "SHOESHOP_ACCEPT_TIMEOUT": ("accept_timeout_s", "600"),
    "SHOESHOP_SHIP_TIMEOUT": ("ship_timeout_s", "7200"),
    "SHOESHOP_OUTBOX_RETENTION": ("outbox_retention_s", "86400"),
    "SHOESHOP_INBOX_RETENTION": ("inbox_retention_s", "864000"),
    "SHOESHOP_READ_TIMEOUT": ("read_timeout_s", "30"),
    "SHOESHOP_STALL_AFTER": ("stall_after_s", "900"),
    "SHOESHOP_WATCHDOG_WINDOW": ("watchdog_window_s", "120"),
}
VARIABLES = sorted(FIELDS)
TYPES = {field.name: field.type for field in dataclasses.fields(Settings)}
WHOLE_NUMBERS = [name for name in VARIABLES if TYPES[FIELDS[name][0]] == "int"]


def _digits_from(zero: int) -> dict[int, int]:
    """A table turning ASCII digits into the ten Unicode digits starting at code point `zero`."""
    return str.maketrans("0123456789", "".join(chr(zero + i) for i in range(10)))


ARABIC_INDIC = _digits_from(0x0660)  # '900' -> '٩٠٠'
FULL_WIDTH = _digits_from(0xFF10)  # '900' -> the full-width nine, zero, zero

# A value at a bound may conflict with a default of another setting; these make it consistent.
COMPANIONS = {
    ("SHOESHOP_MAX_RETRIES", "high"): {"SHOESHOP_REDELIVER_AFTER": "86400"},
    ("SHOESHOP_RETRY_BASE_DELAY", "high"): {
        "SHOESHOP_RETRY_MAX_DELAY": "3600",
        "SHOESHOP_VISIBILITY_TIMEOUT": "86400",
        "SHOESHOP_REDELIVER_AFTER": "86400",
    },
    ("SHOESHOP_RETRY_MAX_DELAY", "low"): {"SHOESHOP_RETRY_BASE_DELAY": "0.01"},
    ("SHOESHOP_RETRY_MAX_DELAY", "high"): {"SHOESHOP_VISIBILITY_TIMEOUT": "86400"},
    ("SHOESHOP_STALL_AFTER", "low"): {"SHOESHOP_REDELIVER_AFTER": "6", "SHOESHOP_MAX_RETRIES": "0"},
}


def _underscored(value: str) -> str:
    """The value with an underscore between its first two adjacent digits: '900' -> '9_00'."""
    at = next(i for i in range(1, len(value)) if value[i - 1].isdigit() and value[i].isdigit())
    return value[:at] + "_" + value[at:]


def _above(name: str) -> str:
    return str(NUMERIC_SETTINGS[name].high + 1)


BAD_VALUES: dict[str, Callable[[str], str]] = {
    "nan": lambda _: "nan",
    "NaN": lambda _: "NaN",
    "inf": lambda _: "inf",
    "-inf": lambda _: "-inf",
    "Infinity": lambda _: "Infinity",
    "negative": lambda _: "-1",
    "above-bound": _above,
    "10**30": lambda _: str(10**30),
    "too-long-to-read": lambda _: "9" * 5000,
    "underscore": lambda name: _underscored(FIELDS[name][1]),
    "arabic-indic-digits": lambda name: FIELDS[name][1].translate(ARABIC_INDIC),
    "full-width-digits": lambda name: FIELDS[name][1].translate(FULL_WIDTH),
    "words": lambda _: "many",
    "blank": lambda _: "  ",
}


def _refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(environ)
    return str(refused.value)


def _assert_names_variable_value_and_range(message: str, name: str, raw: str) -> None:
    bounds = NUMERIC_SETTINGS[name]
    assert message.startswith(f"{name} must be ")
    assert f"between {bounds.low} and {bounds.high}" in message
    assert message.endswith(f", not {raw!r}")


def test_every_numeric_setting_has_bounds_and_is_tested() -> None:
    numeric_fields = {field for field, kind in TYPES.items() if kind in ("int", "float")}
    assert set(NUMERIC_SETTINGS) == set(FIELDS)
    assert {field for field, _ in FIELDS.values()} == numeric_fields


def test_the_defaults_are_accepted_and_inside_their_bounds() -> None:
    settings = Settings.from_env({})
    for name in VARIABLES:
        bounds = NUMERIC_SETTINGS[name]
        assert bounds.low <= getattr(settings, FIELDS[name][0]) <= bounds.high, name


@pytest.mark.parametrize("name", VARIABLES)
def test_an_empty_value_keeps_the_default(name: str) -> None:
    field = FIELDS[name][0]
    assert getattr(Settings.from_env({name: ""}), field) == getattr(Settings.from_env({}), field)


@pytest.mark.parametrize("name", VARIABLES)
def test_a_plain_ascii_value_is_read(name: str) -> None:
    field, value = FIELDS[name]
    assert getattr(Settings.from_env({name: value}), field) == float(value)


# The lowest visibility timeout and the lowest redeliver-after are set by their consistency
# checks (see the tests below), not their ranges.
SET_BY_A_CONSISTENCY_CHECK = {
    ("SHOESHOP_VISIBILITY_TIMEOUT", "low"),
    ("SHOESHOP_REDELIVER_AFTER", "low"),
    # The outbox keeps more than the redelivery sweep watches, the inbox more than the outbox.
    ("SHOESHOP_OUTBOX_RETENTION", "low"),
    ("SHOESHOP_OUTBOX_RETENTION", "high"),
    ("SHOESHOP_INBOX_RETENTION", "low"),
    # A parcel has a minute more than its packing to leave.
    ("SHOESHOP_SHIP_TIMEOUT", "low"),
}
ENDS = [
    (name, end)
    for name in VARIABLES
    for end in ("low", "high")
    if (name, end) not in SET_BY_A_CONSISTENCY_CHECK
]


@pytest.mark.parametrize(("name", "end"), ENDS)
def test_both_ends_of_a_range_are_allowed(name: str, end: str) -> None:
    bound = getattr(NUMERIC_SETTINGS[name], end)
    environ = {**COMPANIONS.get((name, end), {}), name: str(bound)}
    assert getattr(Settings.from_env(environ), FIELDS[name][0]) == bound


@pytest.mark.parametrize("bad", list(BAD_VALUES))
@pytest.mark.parametrize("name", VARIABLES)
def test_a_bad_value_is_refused_naming_the_variable_and_the_range(name: str, bad: str) -> None:
    raw = BAD_VALUES[bad](name)
    message = _refusal({name: raw})
    _assert_names_variable_value_and_range(message, name, raw)


@pytest.mark.parametrize("bad", ["underscore", "arabic-indic-digits", "full-width-digits"])
@pytest.mark.parametrize("name", VARIABLES)
def test_digits_python_would_read_are_refused_unless_ascii(name: str, bad: str) -> None:
    raw = BAD_VALUES[bad](name)
    assert float(raw) == float(FIELDS[name][1])  # Python's own parser takes it
    _assert_names_variable_value_and_range(_refusal({name: raw}), name, raw)


@pytest.mark.parametrize("name", WHOLE_NUMBERS)
@pytest.mark.parametrize("raw", ["1.5", "1e3", "0x10"])
def test_a_whole_number_setting_refuses_anything_but_digits(name: str, raw: str) -> None:
    message = _refusal({name: raw})
    _assert_names_variable_value_and_range(message, name, raw)
    assert "a whole number" in message


def test_a_nan_retry_max_delay_is_refused() -> None:
    # It used to be accepted; the first transient fault then raised inside Celery's retry().
    assert _refusal({"SHOESHOP_RETRY_MAX_DELAY": "nan"}) == (
        "SHOESHOP_RETRY_MAX_DELAY must be a finite number of seconds between 0.01 and 3600, "
        "not 'nan'"
    )


def test_a_negative_retry_max_delay_is_refused() -> None:
    # It used to be accepted and turned the backoff off.
    assert _refusal({"SHOESHOP_RETRY_MAX_DELAY": "-5"}) == (
        "SHOESHOP_RETRY_MAX_DELAY must be a finite number of seconds between 0.01 and 3600, "
        "not '-5'"
    )


def test_a_payment_timeout_no_timedelta_can_hold_is_refused() -> None:
    message = _refusal({"SHOESHOP_PAYMENT_TIMEOUT": str(10**30)})
    assert message == (
        "SHOESHOP_PAYMENT_TIMEOUT must be a whole number of seconds between 1 and 315360000, "
        f"not '{10**30}'"
    )


def test_a_base_delay_above_the_max_delay_is_refused_naming_both() -> None:
    message = _refusal({"SHOESHOP_RETRY_BASE_DELAY": "40", "SHOESHOP_RETRY_MAX_DELAY": "30"})
    assert "SHOESHOP_RETRY_BASE_DELAY" in message
    assert "SHOESHOP_RETRY_MAX_DELAY" in message


def test_a_base_delay_equal_to_the_max_delay_is_allowed() -> None:
    settings = Settings.from_env(
        {"SHOESHOP_RETRY_BASE_DELAY": "30", "SHOESHOP_RETRY_MAX_DELAY": "30"}
    )
    assert settings.retry_base_delay_s == settings.retry_max_delay_s == 30


def test_the_visibility_timeout_must_still_exceed_the_longest_retry_wait() -> None:
    message = _refusal({"SHOESHOP_VISIBILITY_TIMEOUT": "35", "SHOESHOP_RETRY_MAX_DELAY": "30"})
    assert message.startswith("SHOESHOP_VISIBILITY_TIMEOUT (35s) must exceed")


def test_even_the_shortest_retry_delay_needs_a_visibility_timeout_above_a_gateway_call() -> None:
    message = _refusal(
        {
            "SHOESHOP_VISIBILITY_TIMEOUT": "5",
            "SHOESHOP_RETRY_BASE_DELAY": "0.01",
            "SHOESHOP_RETRY_MAX_DELAY": "0.01",
        }
    )
    assert message.startswith("SHOESHOP_VISIBILITY_TIMEOUT (5s) must exceed")


# --- SHOESHOP_REDELIVER_AFTER against the retry budget -------------------------------------------

DEFAULT_BUDGET_S = 37  # retries 1+1+2+4+8+16 (0.5 s doubling, at least 1 s each) + a 5 s call


def _budget_message_of(environ: dict[str, str]) -> str:
    message = _refusal(environ)
    assert message.startswith("SHOESHOP_REDELIVER_AFTER (")
    for name in ("SHOESHOP_MAX_RETRIES", "SHOESHOP_RETRY_BASE_DELAY", "SHOESHOP_RETRY_MAX_DELAY"):
        assert name in message
    return message


@pytest.mark.parametrize(
    ("environ", "budget"),
    [
        # The reviewer's example: a second, while a delivery may retry for half a minute.
        ({"SHOESHOP_REDELIVER_AFTER": "1"}, "37"),
        ({"SHOESHOP_REDELIVER_AFTER": str(DEFAULT_BUDGET_S)}, "37"),  # equal is not past it
        ({"SHOESHOP_REDELIVER_AFTER": "5", "SHOESHOP_MAX_RETRIES": "0"}, "5"),  # the call alone
        # Every retry counts at least a second (RabbitMQ's delayed delivery): 6 + 5.
        (
            {
                "SHOESHOP_REDELIVER_AFTER": "11",
                "SHOESHOP_RETRY_BASE_DELAY": "0.01",
                "SHOESHOP_RETRY_MAX_DELAY": "0.01",
            },
            "11",
        ),
        # 32 s for the first six retries, then 94 at the 30 s ceiling, then the call.
        ({"SHOESHOP_REDELIVER_AFTER": "2857", "SHOESHOP_MAX_RETRIES": "100"}, "2857"),
        # A budget between whole seconds: 1.25 + 2.5 + 5 (+ 5).
        (
            {
                "SHOESHOP_REDELIVER_AFTER": "13",
                "SHOESHOP_MAX_RETRIES": "3",
                "SHOESHOP_RETRY_BASE_DELAY": "1.25",
            },
            "13.75",
        ),
    ],
)
def test_a_redeliver_after_within_the_retry_budget_is_refused_naming_the_bound(
    environ: dict[str, str], budget: str
) -> None:
    message = _budget_message_of(environ)
    assert f"plus a gateway call ({budget}s)" in message
    assert message.endswith("or the relay would re-send a delivery that is still retrying")


@pytest.mark.parametrize(
    "environ",
    [
        {},  # 300
        {"SHOESHOP_REDELIVER_AFTER": str(DEFAULT_BUDGET_S + 1)},
        {"SHOESHOP_REDELIVER_AFTER": "6", "SHOESHOP_MAX_RETRIES": "0"},
        {"SHOESHOP_REDELIVER_AFTER": "2858", "SHOESHOP_MAX_RETRIES": "100"},
        # What the test suites run with: tests/chaos/conftest.py (RETRIES)...
        {
            "SHOESHOP_RETRY_BASE_DELAY": "0.2",
            "SHOESHOP_RETRY_MAX_DELAY": "2",
            "SHOESHOP_MAX_RETRIES": "5",
            "SHOESHOP_VISIBILITY_TIMEOUT": "15",
            "SHOESHOP_REDELIVER_AFTER": "20",
        },
        # ... tests/integration/conftest.py and tests/upgrade (FAST_RETRIES, child.py).
        {
            "SHOESHOP_RETRY_BASE_DELAY": "0.05",
            "SHOESHOP_RETRY_MAX_DELAY": "0.4",
            "SHOESHOP_MAX_RETRIES": "4",
        },
        {
            "SHOESHOP_RETRY_BASE_DELAY": "0.1",
            "SHOESHOP_RETRY_MAX_DELAY": "1",
            "SHOESHOP_MAX_RETRIES": "4",
        },
    ],
)
def test_a_redeliver_after_past_the_retry_budget_is_allowed(environ: dict[str, str]) -> None:
    settings = Settings.from_env(environ)
    assert settings.redeliver_after_s > settings.longest_backoff_s + 5


def test_a_retry_budget_no_redeliver_after_can_exceed_says_what_to_lower() -> None:
    message = _budget_message_of(
        {
            "SHOESHOP_MAX_RETRIES": "100",
            "SHOESHOP_RETRY_BASE_DELAY": "3600",
            "SHOESHOP_RETRY_MAX_DELAY": "3600",
            "SHOESHOP_VISIBILITY_TIMEOUT": "86400",
            "SHOESHOP_REDELIVER_AFTER": "86400",
        }
    )
    assert "(360005s)" in message
    assert message.endswith(
        "no value up to 86400 does, so lower SHOESHOP_MAX_RETRIES or the retry delays"
    )


class _Longest:
    """An rng whose jitter always picks the longest delay."""

    def uniform(self, _low: float, high: float) -> float:
        return high


@pytest.mark.parametrize(
    ("retries", "base", "ceiling"),
    [("6", "0.5", "30"), ("0", "0.5", "30"), ("10", "0.01", "0.4"), ("100", "0.25", "60")],
)
def test_the_budget_is_the_consumers_own_longest_backoff(
    retries: str, base: str, ceiling: str
) -> None:
    settings = Settings.from_env(
        {
            "SHOESHOP_MAX_RETRIES": retries,
            "SHOESHOP_RETRY_BASE_DELAY": base,
            "SHOESHOP_RETRY_MAX_DELAY": ceiling,
            "SHOESHOP_VISIBILITY_TIMEOUT": "86400",
            "SHOESHOP_REDELIVER_AFTER": "86400",
        }
    )
    longest = [
        max(1.0, backoff_delay(retry, settings, _Longest()))  # type: ignore[arg-type]
        for retry in range(settings.max_retries)
    ]
    assert settings.longest_backoff_s == pytest.approx(sum(longest))


# --- SHOESHOP_SECRET_KEY and SHOESHOP_ADMIN_PASSWORD ---------------------------------------------

SECRETS = ["SHOESHOP_SECRET_KEY", "SHOESHOP_ADMIN_PASSWORD"]
GOOD_KEY = "k" * MIN_SECRET_KEY_CHARS
PRODUCTION = {
    "SHOESHOP_ENV": "production",
    "SHOESHOP_SECRET_KEY": "a-real-secret-key-of-forty-characters-xx",
    "SHOESHOP_ADMIN_PASSWORD": "a-real-admin-password",
}


def test_development_keeps_its_development_secrets_when_they_are_unset() -> None:
    settings = Settings.from_env({})
    assert (settings.secret_key, settings.admin_password) == (DEV_SECRET_KEY, DEV_ADMIN_PASSWORD)
    assert (DEV_SECRET_KEY, DEV_ADMIN_PASSWORD) == ("dev-only-secret-key", "admin")


def test_the_reviewers_production_with_empty_secrets_is_refused() -> None:
    # It used to start: /admin answered 200 without credentials, product pages 500.
    message = _refusal(
        {"SHOESHOP_ENV": "production", "SHOESHOP_ADMIN_PASSWORD": "", "SHOESHOP_SECRET_KEY": ""}
    )
    assert message == (
        "SHOESHOP_SECRET_KEY must be a random string with something other than whitespace in it "
        "(or unset, in development only, for the development value), not an empty value"
    )


@pytest.mark.parametrize(
    ("blank", "got"),
    [("", "an empty value"), (" ", "1 blank character(s)"), (" \t\n", "3 blank character(s)")],
)
@pytest.mark.parametrize("mode", ["development", "production"])
@pytest.mark.parametrize("name", SECRETS)
def test_a_blank_secret_is_refused_in_every_environment(
    name: str, mode: str, blank: str, got: str
) -> None:
    message = _refusal({**PRODUCTION, "SHOESHOP_ENV": mode, name: blank})
    assert message.startswith(f"{name} must be ")
    assert "something other than whitespace" in message
    assert message.endswith(f", not {got}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHOESHOP_SECRET_KEY", None),
        ("SHOESHOP_SECRET_KEY", DEV_SECRET_KEY),
        ("SHOESHOP_ADMIN_PASSWORD", None),
        ("SHOESHOP_ADMIN_PASSWORD", DEV_ADMIN_PASSWORD),
    ],
)
def test_production_refuses_a_secret_unset_or_set_to_its_development_value(
    name: str, value: str | None
) -> None:
    environ = {**PRODUCTION}
    if value is None:
        del environ[name]
    else:
        environ[name] = value
    assert _refusal(environ) == (
        f"{name} must be set when SHOESHOP_ENV=production, to something other than the "
        "development value"
    )


@pytest.mark.parametrize("length", [1, 16, MIN_SECRET_KEY_CHARS - 1])
def test_production_refuses_a_short_secret_key_without_showing_it(length: int) -> None:
    key = "S3cr3t" * 10
    message = _refusal({**PRODUCTION, "SHOESHOP_SECRET_KEY": key[:length]})
    assert message.startswith(
        f"SHOESHOP_SECRET_KEY must be at least 32 characters when SHOESHOP_ENV=production, "
        f"not {length}: "
    )
    assert "S3cr" not in message


def test_production_starts_with_real_secrets_of_any_length_from_32() -> None:
    settings = Settings.from_env({**PRODUCTION, "SHOESHOP_SECRET_KEY": GOOD_KEY})
    assert settings.secret_key == GOOD_KEY
    assert Settings.from_env(PRODUCTION).admin_password == "a-real-admin-password"


def test_development_takes_short_secrets_of_its_own() -> None:
    # Only production asks for a long key; the test suites set e.g. SHOESHOP_ADMIN_PASSWORD=chaos.
    settings = Settings.from_env(
        {"SHOESHOP_SECRET_KEY": "short", "SHOESHOP_ADMIN_PASSWORD": "chaos"}
    )
    assert (settings.secret_key, settings.admin_password) == ("short", "chaos")


# --- URLs ----------------------------------------------------------------------------------------


def _url_refusal(name: str, url: str) -> str:
    message = _refusal({name: url})
    assert message.startswith(f"{name} must be ")
    return message


GATEWAY_ALLOWED = "SHOESHOP_GATEWAY_URL must be an http:// or https:// URL with a host"


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("not a url", "it has no scheme://"),  # the reviewer's examples
        ("ftp://x", "ftp:// is not one of them"),
        ("", "it is empty"),
        ("   ", "it is blank"),
        ("127.0.0.1:8020", "it has no scheme://"),
        ("HTTP://127.0.0.1:8020", "HTTP:// is not one of them"),
        ("http://", "it has no host"),
        ("https://:8020", "it has no host"),
        ("http:///v1", "it has no host"),
        ("http://127.0.0.1:99999", "its port is not a number from 1 to 65535"),
        ("http://127.0.0.1:0", "its port is not a number from 1 to 65535"),
        ("http://127.0.0.1:port", "its port is not a number from 1 to 65535"),
        ("http://[::1", "its host is not one"),
        ("http://exa mple.com", "its host holds blanks"),
        (" http://127.0.0.1:8020", "it starts or ends with whitespace"),
        ("http://127.0.0.1:8020\n", "it starts or ends with whitespace"),
        (
            "http://127.0.0.1:8020?key=1",
            "the client adds its paths to it, so it can have no query or fragment",
        ),
        (
            "http://127.0.0.1:8020/#top",
            "the client adds its paths to it, so it can have no query or fragment",
        ),
    ],
)
def test_a_gateway_url_that_is_no_http_url_is_refused(url: str, fault: str) -> None:
    message = _url_refusal("SHOESHOP_GATEWAY_URL", url)
    assert message.startswith(GATEWAY_ALLOWED)
    assert "a port from 1 to 65535" in message
    assert message.endswith(f", not {url!r}: {fault}")


@pytest.mark.parametrize(
    ("url", "read"),
    [
        ("http://127.0.0.1:8020", "http://127.0.0.1:8020"),
        ("http://127.0.0.1:41234/", "http://127.0.0.1:41234"),  # a free port, as the tests use
        ("https://gateway.example", "https://gateway.example"),
        ("https://gateway.example:443/payments/", "https://gateway.example:443/payments"),
        ("http://[::1]:8020", "http://[::1]:8020"),
        ("http://localhost:65535", "http://localhost:65535"),
    ],
)
def test_an_http_gateway_url_is_read_without_its_trailing_slash(url: str, read: str) -> None:
    assert Settings.from_env({"SHOESHOP_GATEWAY_URL": url}).gateway_url == read


def test_the_default_gateway_url_is_the_simulators() -> None:
    assert Settings.from_env({}).gateway_url == "http://127.0.0.1:8020"


ONE_SQLITE_FILE = (
    "one SQLite URL would put every component in one file; unset it for one SQLite file per "
    "component under SHOESHOP_DATA_DIR"
)
DATABASE_ALLOWED = (
    "SHOESHOP_DATABASE_URL must be a PostgreSQL URL (postgresql://, postgres:// or "
    "postgresql+psycopg://), or unset for SQLite files under SHOESHOP_DATA_DIR, not "
)


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("nonsense", "it has no scheme://"),  # the reviewer's examples
        ("mysql://x/y", "mysql:// is not one of them"),
        ("   ", "it is blank"),
        ("postgresql+psycopg2://127.0.0.1/shoeshop", "postgresql+psycopg2:// is not one of them"),
        ("postgres+psycopg://127.0.0.1/shoeshop", "postgres+psycopg:// is not one of them"),
        ("POSTGRESQL://127.0.0.1/shoeshop", "POSTGRESQL:// is not one of them"),
        ("sqlite:///var/shop.db", ONE_SQLITE_FILE),
        ("sqlite+pysqlite:///var/shop.db", ONE_SQLITE_FILE),
        ("postgresql://127.0.0.1:abc/shoeshop", "SQLAlchemy cannot read its host and port"),
        ("postgresql://[::1/shoeshop", "SQLAlchemy cannot read its host and port"),
        ("postgresql://127.0.0.1:99999/shoeshop", "its port is not a number from 1 to 65535"),
        ("postgresql://127.0.0.1:0/shoeshop", "its port is not a number from 1 to 65535"),
        (" postgresql://127.0.0.1/shoeshop", "it starts or ends with whitespace"),
        ("postgresql://127.0.0.1/shop\x00", "it holds control characters"),
    ],
)
def test_a_database_url_that_is_no_postgresql_url_is_refused(url: str, fault: str) -> None:
    message = _url_refusal("SHOESHOP_DATABASE_URL", url)
    assert message.startswith(DATABASE_ALLOWED)
    assert message.endswith(f"{url!r}: {fault}")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/shoeshop_test_0123456789",  # tests/support/stack.py
        "postgresql://postgres@127.0.0.1:5432/shoeshop",  # the README
        "postgres://shop:secret@db.internal/shoeshop",
        "postgresql+psycopg://shop:secret@db.internal:6543/shoeshop?sslmode=require",
        "postgresql:///shoeshop",  # the local unix socket
        "postgresql://shop:pass/word@db.internal/shoeshop",  # SQLAlchemy reads a "/" in it
    ],
)
def test_a_postgresql_database_url_is_allowed(url: str) -> None:
    assert Settings.from_env({"SHOESHOP_DATABASE_URL": url}).database_url == url


TLS_BY_SCHEME = (
    "TLS is chosen by the scheme (amqps://, rediss://) and always checks the certificate and "
    "the host name; name a private CA with SHOESHOP_BROKER_CA_FILE"
)
BROKER_ALLOWED = (
    "SHOESHOP_BROKER_URL must be a Redis URL (redis://, rediss://, redis+socket://) or a "
    "RabbitMQ one (amqp://, amqps://, pyamqp://), or unset for the embedded Redis, not "
)


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("nonsense", "it has no scheme://"),
        ("http://127.0.0.1:6379", "http:// is not one of them"),
        ("memory://", "memory:// is not one of them"),
        ("sentinel://127.0.0.1:26379", "sentinel:// is not one of them"),
        ("   ", "it is blank"),
        ("redis://127.0.0.1:99999/0", "its port is not a number from 1 to 65535"),
        ("amqp://guest@127.0.0.1:port//", "its port is not a number from 1 to 65535"),
        ("amqp://[::1", "its host is not one"),
        ("redis://127.0.0.1:6379/0 ", "it starts or ends with whitespace"),
        ("amqp://127.0.0.1//;", "it is empty"),
        ("amqp://127.0.0.1//;redis://127.0.0.1/0", "it mixes Redis and RabbitMQ"),
        (
            "amqps://rabbit-a//;amqp://rabbit-b//",
            "it mixes TLS (amqps://, rediss://) and plain URLs",
        ),
        ("amqps://a//?ssl=0", f"its query sets TLS options (ssl): {TLS_BY_SCHEME}"),
        ("amqp://a//?ssl=1", f"its query sets TLS options (ssl): {TLS_BY_SCHEME}"),
        (
            "amqps://a//;amqps://b//?SSL_cert_reqs=CERT_NONE&heartbeat=5",
            f"its query sets TLS options (SSL_cert_reqs): {TLS_BY_SCHEME}",
        ),
        (
            "rediss://a:6380/0?ssl_check_hostname=false&ssl_cert_reqs=none",
            f"its query sets TLS options (ssl_cert_reqs, ssl_check_hostname): {TLS_BY_SCHEME}",
        ),
        (
            # Even one that asks for checks: it would replace the shop's options, CA file
            # included.
            "rediss://a:6380/3?ssl_cert_reqs=required",
            f"its query sets TLS options (ssl_cert_reqs): {TLS_BY_SCHEME}",
        ),
    ],
)
def test_a_broker_url_that_is_no_redis_or_rabbitmq_url_is_refused(url: str, fault: str) -> None:
    message = _url_refusal("SHOESHOP_BROKER_URL", url)
    assert message.startswith(BROKER_ALLOWED)
    assert message.endswith(f"{url!r}: {fault}")


@pytest.mark.parametrize(
    "url",
    [
        "redis+socket:///tmp/pytest-0/var/redis/redis.sock",  # the embedded Redis
        "redis://127.0.0.1:6379/0",
        "rediss://:secret@redis.internal:6380/0",
        "amqp://guest:guest@127.0.0.1:5672//",
        "amqp://guest:guest@127.0.0.1:5672/shoeshop-test-0123456789",  # tests/support/stack.py
        "amqps://shop:secret@rabbit.internal//",
        "pyamqp://guest@127.0.0.1//",
        "amqp://guest@rabbit-a//;amqp://guest@rabbit-b//",  # kombu's failover list
    ],
)
def test_a_redis_or_rabbitmq_broker_url_is_allowed(url: str) -> None:
    assert Settings.from_env({"SHOESHOP_BROKER_URL": url}).effective_broker_url == url


@pytest.mark.parametrize(
    "url",
    [
        "amqps://shop:Secr;etPw@rabbit-1:5671/v",
        "amqps://shop:ok@rabbit-1//;amqps://shop:Secr;etPw@rabbit-2//",
        "rediss://:Secr;etPw@redis-1:6380/0",
    ],
)
def test_a_password_with_a_semicolon_is_refused_without_being_shown(url: str) -> None:
    message = _url_refusal("SHOESHOP_BROKER_URL", url)
    assert "Secr" not in message and "etPw" not in message, message
    assert "***" in message
    assert "write it as %3B" in message


def test_production_refuses_the_example_file_s_placeholders_naming_only_the_variables() -> None:
    production = {
        "SHOESHOP_ENV": "production",
        "SHOESHOP_SECRET_KEY": "k" * 64,
        "SHOESHOP_ADMIN_PASSWORD": "a real one",
    }
    message = _refusal(
        {
            **production,
            "SHOESHOP_BROKER_URL": "amqps://shoeshop:CHANGE-ME@rabbit-1:5671/shoeshop",
            "FLOWER_BASIC_AUTH": "ops:CHANGE-ME",
        }
    )
    assert message.startswith("FLOWER_BASIC_AUTH, SHOESHOP_BROKER_URL still hold the example's")
    assert "rabbit-1" not in message and "ops" not in message
    assert Settings.from_env(production).is_production
    # In development the example's values may stand (a local trial of the file).
    assert Settings.from_env({"FLOWER_BASIC_AUTH": "ops:CHANGE-ME"}).env == "development"


def test_a_broker_ca_file_is_checked_when_the_settings_are_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    ca = make_certificates(tmp_path).ca
    tls = {"SHOESHOP_BROKER_URL": "amqps://shop@rabbit.internal//"}

    settings = Settings.from_env({**tls, "SHOESHOP_BROKER_CA_FILE": str(ca)})
    assert (settings.broker_tls, settings.broker_ca_file) == (True, ca)
    assert Settings.from_env(tls).broker_ca_file is None  # the system's store

    for environ, fault in (
        ({**tls, "SHOESHOP_BROKER_CA_FILE": str(tmp_path / "nowhere.pem")}, "cannot be read"),
        ({**tls, "SHOESHOP_BROKER_CA_FILE": str(empty)}, "holds no CA certificate in PEM form"),
        (
            {"SHOESHOP_BROKER_URL": "redis://cache:6379/0", "SHOESHOP_BROKER_CA_FILE": str(ca)},
            "does not use TLS",
        ),
        ({"SHOESHOP_BROKER_CA_FILE": str(ca)}, "does not use TLS"),  # the embedded Redis
    ):
        message = _refusal(environ)
        assert message.startswith("SHOESHOP_BROKER_CA_FILE (") and fault in message, message


def test_unset_urls_keep_sqlite_files_and_the_embedded_redis() -> None:
    settings = Settings.from_env({"SHOESHOP_DATABASE_URL": "", "SHOESHOP_BROKER_URL": ""})
    assert (settings.database_url, settings.embedded_broker) == (None, True)


@pytest.mark.parametrize(
    ("name", "url", "shown"),
    [
        ("SHOESHOP_GATEWAY_URL", "ftp://pay:hunter2@gw", "ftp://pay:***@gw"),
        ("SHOESHOP_DATABASE_URL", "mysql://shop:hunter2@db/x", "mysql://shop:***@db/x"),
        ("SHOESHOP_DATABASE_URL", "postgresql://u:hun/ter2@db:0/x", "postgresql://u:***@db:0/x"),
        ("SHOESHOP_BROKER_URL", "redis://:hunter2@h:99999/0", "redis://:***@h:99999/0"),
        (
            "SHOESHOP_BROKER_URL",
            "amqp://g:hunter2@a//;redis://:hunter2@b/0",
            "amqp://g:***@a//;redis://:***@b/0",
        ),
    ],
)
def test_a_refused_url_is_shown_without_its_password(name: str, url: str, shown: str) -> None:
    message = _url_refusal(name, url)
    assert "hunter2" not in message and "ter2" not in message
    assert f"not {shown!r}: " in message


def test_a_printed_settings_shows_no_secret() -> None:
    shown = repr(Settings.from_env(PRODUCTION))
    assert PRODUCTION["SHOESHOP_SECRET_KEY"] not in shown
    assert PRODUCTION["SHOESHOP_ADMIN_PASSWORD"] not in shown


def test_a_printed_settings_shows_no_password_of_a_url_nor_any_secret() -> None:
    settings = Settings.from_env(
        {
            "SHOESHOP_BROKER_URL": "amqp://shop:broker-pass@rabbit:5672//",
            "SHOESHOP_DATABASE_URL": "postgresql://shop:db-pass@pg:5432/shoeshop",
            "SHOESHOP_SECRET_KEY": "s" * 40,
            "SHOESHOP_ADMIN_PASSWORD": "admin-pass",
        }
    )
    shown = repr(settings)
    assert "amqp://shop:***@rabbit:5672//" in shown
    assert "postgresql://shop:***@pg:5432/shoeshop" in shown
    for secret in ("broker-pass", "db-pass", "s" * 40, "admin-pass"):
        assert secret not in shown


# --- Flower's credentials -----------------------------------------------------------------------

FLOWER_USER_ALLOWED = "SHOESHOP_FLOWER_USER must be printable ASCII without ':' or ','"
FLOWER_PASSWORD_ALLOWED = "SHOESHOP_FLOWER_PASSWORD must be printable ASCII without ','"


@pytest.mark.parametrize(
    ("user", "fault"),
    [
        ("", "it is empty"),
        ("ad:min", "it holds a ':' or a ','"),  # "ad" + "min:pw" would log in as "ad:min" + "pw"
        ("admin,ops", "it holds a ':' or a ','"),
        ("ädmin", "it holds a character that is not printable ASCII"),
        ("admin\t", "it holds a character that is not printable ASCII"),
        ("admin\n", "it holds a character that is not printable ASCII"),
    ],
)
def test_a_flower_user_flower_cannot_read_as_one_login_is_refused(user: str, fault: str) -> None:
    message = _refusal({"SHOESHOP_FLOWER_USER": user})
    assert message.startswith(FLOWER_USER_ALLOWED)
    assert message.endswith(f"not {user!r}: {fault}")


@pytest.mark.parametrize(
    ("password", "fault"),
    [
        ("s3cr3t,pa55", "it holds a ','"),  # the reviewer's: two logins, admin:s3cr3t and pa55
        (",", "it holds a ','"),
        ("pässwort-geheim", "it holds a character that is not printable ASCII"),
        ("pass\tword", "it holds a character that is not printable ASCII"),
        ("password\x00", "it holds a character that is not printable ASCII"),
        ("", "it is empty"),
        ("   ", "it is 3 blank character(s)"),
    ],
)
@pytest.mark.parametrize("mode", ["development", "production"])
def test_a_flower_password_flower_cannot_use_is_refused_without_showing_it(
    password: str, fault: str, mode: str
) -> None:
    environ = {**PRODUCTION, "SHOESHOP_ENV": mode, "SHOESHOP_FLOWER_PASSWORD": password}
    message = _refusal(environ)
    assert message.startswith(FLOWER_PASSWORD_ALLOWED)
    assert message.endswith(f"the value set is not shown: {fault}")
    for part in (password, *password.split(",")):
        if len(part.strip()) > 2:  # "," and "it is empty" are in every such message
            assert part not in message


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("ops", "system-test-password"),  # tests/system/conftest.py
        ("admin", "Tr0ub4dor&3:with a colon and spaces"),  # Flower compares the whole pair
        ("flower admin", "!\"#$%&'()*+-./:;<=>?@[\\]^_`{|}~"),  # all of ASCII's punctuation but ,
    ],
)
def test_printable_ascii_flower_credentials_are_read_as_they_are(user: str, password: str) -> None:
    settings = Settings.from_env(
        {**PRODUCTION, "SHOESHOP_FLOWER_USER": user, "SHOESHOP_FLOWER_PASSWORD": password}
    )
    assert (settings.flower_user, settings.flower_password) == (user, password)
    assert password not in repr(settings)


def test_unset_flower_credentials_are_left_to_the_launcher() -> None:
    settings = Settings.from_env({})
    assert (settings.flower_user, settings.flower_password) == (None, None)


def test_the_launcher_hands_flower_the_checked_credentials_or_a_generated_password() -> None:
    given = Settings.from_env({"SHOESHOP_FLOWER_USER": "ops", "SHOESHOP_FLOWER_PASSWORD": "pw:1"})
    assert flower_credentials(False, given) == ("ops", "pw:1", False)
    user, password, generated = flower_credentials(False, Settings.from_env({}))
    assert (user, generated) == ("admin", True)
    Settings.from_env({"SHOESHOP_FLOWER_PASSWORD": password})  # a generated one passes the check


def test_the_launcher_refuses_flower_credentials_settings_would_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOESHOP_FLOWER_PASSWORD", "s3cr3t,pa55")
    with pytest.raises(ConfigurationError, match=r"^SHOESHOP_FLOWER_PASSWORD must be") as refused:
        flower_credentials(production=False)
    assert "s3cr3t" not in str(refused.value)


# --- Log format ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yaml", "JSONL", "text json", "plain", "j son", "-"])
def test_a_log_format_other_than_text_or_json_is_refused(value: str) -> None:
    message = _refusal({"SHOESHOP_LOG_FORMAT": value})
    assert message == (
        "SHOESHOP_LOG_FORMAT must be 'text' or 'json' (in any case, blanks around it ignored), "
        f"or unset for 'text', not {value!r}"
    )


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("text", "text"),
        ("json", "json"),
        ("JSON ", "json"),  # read as workers.messaging.logs reads it: trimmed, case-blind
        (" Text", "text"),
        ("", "text"),  # empty is unset, as for every setting
    ],
)
def test_text_or_json_in_any_case_is_the_log_format(value: str, read: str) -> None:
    assert Settings.from_env({"SHOESHOP_LOG_FORMAT": value}).log_format == read
    assert (read == "json") == json_requested_by(value)


def json_requested_by(value: str) -> bool:
    """What the workers' logging makes of the value (workers.messaging.logs.json_requested)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHOESHOP_LOG_FORMAT", value)
        return json_requested()


def test_the_log_format_is_text_when_unset() -> None:
    assert Settings.from_env({}).log_format == "text"


# --- Redis database numbers ---------------------------------------------------------------------

REDIS_DATABASE_FAULT = (
    "is no Redis database: it must be empty, '/' or '/' and a number in ASCII digits (0 to 15 "
    "with Redis' default `databases 16`)"
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("redis://127.0.0.1:6399/abc", "/abc"),  # the reviewer's: kombu's "Database is int …"
        ("rediss://:hunter2@redis.internal:6380/db1", "/db1"),
        ("redis://127.0.0.1:6379/0/", "/0/"),
        ("redis://127.0.0.1:6379//", "//"),
        ("redis://127.0.0.1:6379/-1", "/-1"),
        ("redis://127.0.0.1:6379/1_0", "/1_0"),
        ("redis://127.0.0.1:6379/\u0661", "/\u0661"),  # an Arabic-Indic 1
        ("amqp://127.0.0.1//x;redis://127.0.0.1/x", None),  # mixed: the first fault is Redis'
        ("redis://a/0;redis://b/x", "/x"),  # every URL of a failover list is checked
    ],
)
def test_a_redis_broker_url_whose_path_is_no_database_number_is_refused(
    url: str, path: str | None
) -> None:
    message = _url_refusal("SHOESHOP_BROKER_URL", url)
    assert message.startswith(BROKER_ALLOWED)
    assert "hunter2" not in message
    if path is None:
        assert message.endswith(f": its path '/x' {REDIS_DATABASE_FAULT}")
    else:
        assert message.endswith(f": its path {path!r} {REDIS_DATABASE_FAULT}")


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:6379/15",
        "redis://127.0.0.1:6379/42",  # a server with more databases; only it can refuse one
        "rediss://:secret@redis.internal:6380/3",
        "redis+socket:///tmp/var/redis/redis.sock",  # its path is the socket's
        "amqp://127.0.0.1/shoeshop-test-0123456789",  # a vhost, not a database
    ],
)
def test_a_redis_url_with_no_or_a_numbered_database_is_allowed(url: str) -> None:
    assert Settings.from_env({"SHOESHOP_BROKER_URL": url}).broker_url == url


def test_a_parcel_must_have_longer_to_leave_than_it_takes_to_pack() -> None:
    with pytest.raises(ConfigurationError, match=r"SHOESHOP_SHIP_TIMEOUT \(119s\) must exceed"):
        Settings.from_env({"SHOESHOP_SHIP_TIMEOUT": "119", "SHOESHOP_PACKING_DELAY": "60"})
    accepted = Settings.from_env({"SHOESHOP_SHIP_TIMEOUT": "120", "SHOESHOP_PACKING_DELAY": "60"})
    assert accepted.ship_timeout_s == 120


def test_an_inbox_row_outlives_every_resending_of_its_event() -> None:
    with pytest.raises(ConfigurationError, match=r"SHOESHOP_INBOX_RETENTION \(86400s\) must"):
        Settings.from_env(
            {"SHOESHOP_OUTBOX_RETENTION": "86400", "SHOESHOP_INBOX_RETENTION": "86400"}
        )
    kept = Settings.from_env(
        {"SHOESHOP_OUTBOX_RETENTION": "86400", "SHOESHOP_INBOX_RETENTION": "86401"}
    )
    assert (kept.outbox_retention_s, kept.inbox_retention_s) == (86400, 86401)


def test_the_outbox_keeps_what_the_redelivery_sweep_watches() -> None:
    # Redeliver after 300 s, watched for 600 s more: 900 s must still be in the outbox.
    with pytest.raises(ConfigurationError, match=r"SHOESHOP_OUTBOX_RETENTION \(900s\) must"):
        Settings.from_env({"SHOESHOP_OUTBOX_RETENTION": "900"})
    assert Settings.from_env({"SHOESHOP_OUTBOX_RETENTION": "901"}).outbox_retention_s == 901


def test_the_archive_directory_is_optional_and_made_absolute() -> None:
    assert Settings.from_env({}).archive_dir is None
    archive = Settings.from_env({"SHOESHOP_ARCHIVE_DIR": "var/archive"}).archive_dir
    assert archive is not None and archive.is_absolute() and archive.name == "archive"


@pytest.mark.parametrize(
    ("environ", "stall_after"),
    [
        ({}, 600),
        ({"SHOESHOP_REDELIVER_AFTER": "60"}, 600),
        ({"SHOESHOP_REDELIVER_AFTER": "3600"}, 7200),  # twice it, when that is more
        ({"SHOESHOP_REDELIVER_AFTER": "86400"}, 172800),
        ({"SHOESHOP_REDELIVER_AFTER": "3600", "SHOESHOP_STALL_AFTER": "3601"}, 3601),
    ],
)
def test_a_queue_is_stalled_after_ten_minutes_or_twice_the_redeliver_after(
    environ: dict[str, str], stall_after: int
) -> None:
    assert Settings.from_env(environ).stall_after_s == stall_after


@pytest.mark.parametrize("stall_after", ["300", "120"])
def test_a_stall_bound_within_the_redeliver_after_is_refused_naming_both(stall_after: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"SHOESHOP_STALL_AFTER": stall_after})
    assert str(refused.value).startswith(
        f"SHOESHOP_STALL_AFTER ({stall_after}s) must exceed SHOESHOP_REDELIVER_AFTER (300s)"
    )


def test_an_inbox_retention_within_the_visibility_timeout_is_refused_naming_both() -> None:
    # A message applied by a worker killed before its acknowledgement comes back after the
    # visibility timeout: its inbox row must still be there.
    environ = {
        "SHOESHOP_VISIBILITY_TIMEOUT": "86400",
        "SHOESHOP_OUTBOX_RETENTION": "1000",
        "SHOESHOP_INBOX_RETENTION": "1001",
    }
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(environ)
    assert str(refused.value).startswith(
        "SHOESHOP_INBOX_RETENTION (1001s) must exceed SHOESHOP_VISIBILITY_TIMEOUT (86400s)"
    )
    assert Settings.from_env({**environ, "SHOESHOP_INBOX_RETENTION": "86401"})


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (691200, "8 days"),
        (86400, "1 day"),
        (129600, "1.5 days"),
        (39600, "11 hours"),
        (700, "11 minutes 40 s"),
        (60, "1 minute"),
        (40, "40 s"),
    ],
)
def test_a_retention_reads_in_the_unit_it_reaches(seconds: int, words: str) -> None:
    from config.settings import duration_in_words

    assert duration_in_words(seconds) == words
