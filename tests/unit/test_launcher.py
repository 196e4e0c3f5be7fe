"""`shoeshop up`'s Flower credentials: generated in development, required in production."""

from __future__ import annotations

import click
import pytest

from workers.launcher import flower_credentials


def test_development_gets_a_generated_flower_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOESHOP_FLOWER_PASSWORD", raising=False)
    user, password, generated = flower_credentials(production=False)
    assert generated and len(password) >= 12 and user == "admin"


def test_production_refuses_to_start_flower_without_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOESHOP_FLOWER_PASSWORD", raising=False)
    with pytest.raises(click.ClickException, match="SHOESHOP_FLOWER_PASSWORD"):
        flower_credentials(production=True)


def test_a_given_password_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOESHOP_FLOWER_PASSWORD", "s3cret-enough")
    assert flower_credentials(production=True) == ("admin", "s3cret-enough", False)
