"""Every numeric setting is checked when it is read: finite, ASCII digits, inside its bounds and
consistent with the others; a refusal names the variable, what it got and the allowed range."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from config.settings import NUMERIC_SETTINGS, ConfigurationError, Settings

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
    ("SHOESHOP_RETRY_BASE_DELAY", "high"): {
        "SHOESHOP_RETRY_MAX_DELAY": "3600",
        "SHOESHOP_VISIBILITY_TIMEOUT": "86400",
    },
    ("SHOESHOP_RETRY_MAX_DELAY", "low"): {"SHOESHOP_RETRY_BASE_DELAY": "0.01"},
    ("SHOESHOP_RETRY_MAX_DELAY", "high"): {"SHOESHOP_VISIBILITY_TIMEOUT": "86400"},
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


# The lowest visibility timeout is set by its consistency check (see the last test), not its range.
ENDS = [
    (name, end)
    for name in VARIABLES
    for end in ("low", "high")
    if (name, end) != ("SHOESHOP_VISIBILITY_TIMEOUT", "low")
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
