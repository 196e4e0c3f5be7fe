"""`shoeshop up`'s Flower credentials (generated in development, required in production) and its
banner (no password of a URL in it)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from config.settings import Settings
from workers.launcher import Launcher, flower_credentials


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


def test_the_banner_shows_no_password_of_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env(
        {
            "SHOESHOP_BROKER_URL": "amqp://shop:brokersecret@mq1:5672//;amqp://shop:brokersecret@mq2",
            "SHOESHOP_DATABASE_URL": "postgresql://shop:dbsecret@db:5432/shop",
            "SHOESHOP_SMTP_URL": "smtp://shop:mailsecret@mail:587",
        }
    )
    launcher = Launcher(settings, Path("Procfile"), {"web": 8000, "flower": 5555, "gateway": 8020})
    env = {
        "SHOESHOP_BROKER_URL": str(settings.broker_url),
        "SHOESHOP_GATEWAY_URL": "http://127.0.0.1:8020",
        "SHOESHOP_SMTP_URL": str(settings.smtp_url),
    }

    launcher._announce(env, "admin", None, catching=False)

    banner = capsys.readouterr().out
    assert "secret" not in banner
    assert "amqp://shop:***@mq1:5672//;amqp://shop:***@mq2" in banner
    assert "postgresql://shop:***@db:5432/shop" in banner
    assert "smtp://shop:***@mail:587" in banner


def test_a_password_given_as_a_query_parameter_is_masked_too() -> None:
    from config.settings import masked_url

    shown = masked_url("postgresql://shop@db/shop?sslmode=require&PASSWORD=dbsecret&x=1")

    assert shown == "postgresql://shop@db/shop?sslmode=require&PASSWORD=***&x=1"


def test_shoeshop_up_runs_each_worker_and_the_relay_under_the_supervisor_and_nothing_else() -> None:
    from workers.launcher import supervised

    lines = {
        "web": "gunicorn app",
        "orders": "shoeshop-worker -Q orders",
        "notifications": "shoeshop-worker -Q notifications",
        "relay": "shoeshop relay",
        "beat": "celery -A config.celery_process beat",
    }

    assert supervised(lines) == {
        **lines,
        "orders": "shoeshop supervise -- shoeshop-worker -Q orders",
        "notifications": ("shoeshop supervise -- shoeshop-worker -Q notifications"),
        "relay": (
            'shoeshop supervise --heartbeat "${SHOESHOP_DATA_DIR:-var}/relay.heartbeat" '
            "-- shoeshop relay"
        ),
    }


def test_the_banner_says_where_mail_goes_even_when_nothing_catches_it() -> None:
    from workers.launcher import _mail_line

    assert "not sent" in _mail_line(None, False, 8000)
    assert _mail_line("smtp://127.0.0.1:8025", True, 8000).endswith("127.0.0.1:8000/admin/mail")
    assert _mail_line("smtp://shop:pw@mail:587", False, 8000) == (
        "Mail       sent through smtp://shop:***@mail:587"
    )
