"""Integration fixtures: real broker and databases, the gateway simulator, a worker in-process."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient

from tests.support import stack as stacks

_state: dict[str, Any] = {}

# Retries in tests back off for tens of milliseconds instead of seconds.
FAST_RETRIES = {
    "SHOESHOP_RETRY_BASE_DELAY": "0.05",
    "SHOESHOP_RETRY_MAX_DELAY": "0.4",
    "SHOESHOP_MAX_RETRIES": "4",
}


def pytest_configure(config: pytest.Config) -> None:
    """Start the stack before any test module imports the Celery app or reads the settings."""
    if stacks.stack_name() == "services" and (reason := stacks.services_missing()):
        if stacks.services_required():
            raise pytest.UsageError(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        _state["skip"] = reason
        return
    base = Path(tempfile.mkdtemp(prefix="shoeshop-it-"))
    stack = stacks.start_stack(base)
    from workers.gateway.server import start_in_thread

    gateway = start_in_thread(base / "gateway")
    from workers.mailcatcher import start_in_thread as start_catcher

    catcher = start_catcher(base / "mail")
    os.environ.update(stack.env)
    os.environ.update(FAST_RETRIES)
    os.environ["SHOESHOP_GATEWAY_URL"] = gateway.url
    os.environ["SHOESHOP_SMTP_URL"] = catcher.url
    from config.settings import get_settings

    get_settings.cache_clear()
    from workers.db_cli import upgrade_all

    upgrade_all()
    _state.update(stack=stack, gateway=gateway, base=base, catcher=catcher)


def pytest_unconfigure(config: pytest.Config) -> None:
    if "stack" not in _state:
        return
    from workers.messaging.database import dispose_all

    dispose_all()
    _state["gateway"].stop()
    _state["catcher"].stop()
    _state["stack"].close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if reason := _state.get("skip"):
        for item in items:
            if "integration" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return str(_state["gateway"].url)


@pytest.fixture(scope="session")
def gateway_simulator() -> Any:
    """The gateway simulator the suite charges (workers.gateway.server.RunningGateway), for
    the fault controls a test may need (``allow_refunds``)."""
    return _state["gateway"]


@pytest.fixture(scope="session")
def catcher() -> Any:
    """The mail catcher every mail of the suite goes to (workers.mailcatcher.RunningCatcher)."""
    return _state["catcher"]


@pytest.fixture(scope="session")
def celery_app() -> Celery:
    from config.celery_process import app  # this process runs a worker: wired as one

    app.loader.import_default_modules()
    return app


@pytest.fixture(scope="session")
def worker(celery_app: Celery) -> Iterator[Any]:
    """One worker consuming every component's queue, as the Procfile's four would."""
    from celery.contrib.testing.worker import start_worker

    from config.settings import QUEUES

    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        queues=list(QUEUES),
        shutdown_timeout=30,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def app() -> Flask:
    from shop import create_app

    return create_app({"TESTING": True})


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Change a setting for one test; the in-process worker reads it on its next task."""
    from config.settings import get_settings

    def change(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()
