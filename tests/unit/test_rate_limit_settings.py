"""SHOESHOP_RATE_LIMITS and SHOESHOP_TRUSTED_PROXIES: read as documented, every wrong value
refused with the variable, the entry and the fault named."""

from __future__ import annotations

import pytest

from config.settings import DEFAULT_RATE_LIMITS, ConfigurationError, Settings


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(environ)
    return str(refused.value)


def test_unset_the_defaults_hold() -> None:
    settings = Settings.from_env({})
    assert dict(settings.rate_limits) == DEFAULT_RATE_LIMITS
    assert settings.rate_limit("admin_login") == "5/minute"
    assert settings.trusted_proxies == ()


def test_a_limit_is_changed_or_lifted_one_at_a_time() -> None:
    settings = Settings.from_env(
        {"SHOESHOP_RATE_LIMITS": " checkout = OFF ; admin_login=10 per hour"}
    )
    assert settings.rate_limit("checkout") is None
    assert settings.rate_limit("admin_login") == "10 per hour"


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        ("checkout", "in 'checkout', it is no name=limit"),
        ("basket=5/minute", "'basket' is not one of admin_login, checkout"),
        ("checkout=5/fortnight", "'5/fortnight' is no limit such as 5/minute"),
        ("checkout=many", "'many' is no limit such as 5/minute"),
        ("checkout=-1/minute", "'-1/minute' is no limit such as 5/minute"),
        ("checkout=", "'' is no limit such as 5/minute"),
    ],
)
def test_a_wrong_limit_is_refused(raw: str, fault: str) -> None:
    message = refusal({"SHOESHOP_RATE_LIMITS": raw})
    assert message.startswith("SHOESHOP_RATE_LIMITS must be name=limit pairs")
    assert fault in message


def test_trusted_proxies_are_addresses_and_networks() -> None:
    settings = Settings.from_env({"SHOESHOP_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16, ::1"})
    assert settings.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16", "::1/128")


@pytest.mark.parametrize("raw", ["proxy.internal", "10.0.0.300", "10.0.0.0/40"])
def test_a_proxy_that_is_no_address_is_refused(raw: str) -> None:
    message = refusal({"SHOESHOP_TRUSTED_PROXIES": raw})
    assert message.startswith("SHOESHOP_TRUSTED_PROXIES must be IP addresses or networks")
    assert repr(raw) in message
