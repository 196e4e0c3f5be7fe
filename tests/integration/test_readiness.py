"""Readiness follows the shop's database, never the broker (issue #18, health checks): a
checkout made while the broker is away waits in the outbox, so a web host that cannot reach the
broker still takes orders and must stay in the proxy's rotation."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from config.celery import app as celery_app


def refused_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def broker_away() -> Iterator[None]:
    """The web's broker connection pointed at a port that refuses it, then put back."""
    before = celery_app.conf.get("broker_write_url")
    celery_app.conf.broker_write_url = f"amqp://guest:guest@127.0.0.1:{refused_port()}//"
    try:
        yield
    finally:
        celery_app.conf.broker_write_url = before


def test_ready_when_its_database_answers(client: FlaskClient) -> None:
    answer = client.get("/readyz")

    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ready"}


@pytest.mark.usefixtures("broker_away")
def test_a_web_that_cannot_reach_the_broker_stays_ready(
    client: FlaskClient,
) -> None:
    # (That such a web still takes orders, their order.placed kept in the outbox for the relay,
    # is tests/system/test_traces.py's place_while_the_web_cannot_publish and the failure
    # matrix's broker-down-at-checkout scenario.)
    answer = client.get("/readyz")

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"status": "ready"}
