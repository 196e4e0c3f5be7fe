"""Live order views: a committed change pushed to every watching stream, through a broker blip.

The hub and the announcer here use a broker of the test's own (an embedded Redis it can stop and
start, or a RabbitMQ vhost whose connections it closes), so the blip touches nothing else; the
stream tests at the end go through the shop's app and its worker on the session's broker.
"""

from __future__ import annotations

import json
import queue
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient

from shop import live
from shop.web.live import RESYNC, Hub, Item, Notice
from tests.integration.test_sse import order_frames, read_events
from tests.support import stack as stacks
from tests.support.shop import order_body, wait_for
from workers.messaging.embedded_redis import EmbeddedRedis

WAIT_S = 30.0


@dataclass
class OwnBroker:
    url: str
    blip: Callable[[], None]


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    if stacks.stack_name() == "services":
        vhost = f"shoeshop-live-{uuid.uuid4().hex[:8]}"
        stacks._rabbitmqctl("add_vhost", vhost)
        stacks._rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

        def close_connections() -> None:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "a test's blip"],
                check=True,
                capture_output=True,
                timeout=60,
            )

        yield OwnBroker(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", close_connections)
        stacks._rabbitmqctl("delete_vhost", vhost)
        return
    redis = EmbeddedRedis(tmp_path / "live-redis" / "redis.sock")
    redis.start()

    def restart() -> None:
        redis.stop()
        redis.start()

    yield OwnBroker(redis.url, restart)
    redis.stop()


@pytest.fixture
def hub_app(own_broker: OwnBroker) -> Iterator[Celery]:
    app = Celery("live-test", broker=own_broker.url)
    app.conf.broker_connection_retry_on_startup = True
    yield app
    app.close()


@pytest.fixture
def hub(hub_app: Celery) -> Iterator[Hub]:
    running = Hub(hub_app)
    assert running.wait_subscribed(WAIT_S)
    yield running
    running.stop()


def view(order_id: str, status: str, entries: int) -> dict[str, Any]:
    return {"id": order_id, "status": status, "timeline": [{"type": "t"}] * entries}


def next_notice(waiter: queue.Queue[Item]) -> Item:
    return waiter.get(timeout=WAIT_S)


def next_view(waiter: queue.Queue[Item]) -> Notice:
    """The next notice with a view, past any RESYNC (a subscription coming up sends one to
    every stream already watching)."""
    while True:
        item = next_notice(waiter)
        if isinstance(item, Notice):
            return item


def drain(waiter: queue.Queue[Item]) -> list[Item]:
    found = []
    while True:
        try:
            found.append(waiter.get_nowait())
        except queue.Empty:
            return found


def test_a_change_reaches_every_stream_of_its_order_and_no_other(hub: Hub, hub_app: Celery) -> None:
    order, other = str(uuid.uuid4()), str(uuid.uuid4())
    watchers = [hub.watch(order) for _ in range(3)]
    elsewhere = hub.watch(other)

    live.announce(hub_app, view(order, "PAID", 3))

    for waiter in watchers:
        notice = next_view(waiter)
        assert notice.view == view(order, "PAID", 3)
        assert notice.committed_at > 0
    assert [item for item in drain(elsewhere) if isinstance(item, Notice)] == []
    assert hub.watching() == 4


def test_every_web_process_hears_every_change(hub: Hub, hub_app: Celery) -> None:
    other_process = Hub(hub_app)
    try:
        assert other_process.wait_subscribed(WAIT_S)
        order = str(uuid.uuid4())
        here, there = hub.watch(order), other_process.watch(order)

        live.announce(hub_app, view(order, "PAID", 3))

        for waiter in (here, there):
            assert next_view(waiter).view["status"] == "PAID"
    finally:
        other_process.stop()


def test_after_a_broker_blip_every_stream_reads_its_order_again_and_pushes_resume(
    hub: Hub, hub_app: Celery, own_broker: OwnBroker
) -> None:
    order = str(uuid.uuid4())
    waiter = hub.watch(order)
    assert hub.subscriptions == 1

    own_broker.blip()

    # Once subscribed again, the stream is told to read its order: what was announced while the
    # subscription was away is in that read.
    wait_for(lambda: hub.subscriptions == 2 or None, timeout_s=WAIT_S)
    assert RESYNC in [next_notice(waiter), *drain(waiter)]
    live.announce(hub_app, view(order, "SHIPPED", 4))
    assert next_view(waiter).view["status"] == "SHIPPED"


def test_a_stream_given_back_hears_nothing_more(hub: Hub, hub_app: Celery) -> None:
    order = str(uuid.uuid4())
    kept, returned = hub.watch(order), hub.watch(order)
    hub.unwatch(order, returned)

    live.announce(hub_app, view(order, "PAID", 3))

    assert next_view(kept).view["status"] == "PAID"
    assert [item for item in drain(returned) if isinstance(item, Notice)] == []
    assert hub.watching() == 1


def test_a_notice_that_is_no_view_is_ignored(hub: Hub, hub_app: Celery) -> None:
    order = str(uuid.uuid4())
    waiter = hub.watch(order)
    with hub_app.producer_or_acquire() as producer:
        producer.publish(
            {"order_id": order, "view": "not a view"},
            exchange=live.EXCHANGE,
            routing_key="",
            serializer="json",
            declare=[live.EXCHANGE],
        )
    live.announce(hub_app, view(order, "PAID", 3))

    assert next_view(waiter).view["status"] == "PAID"


def first_frame_id(client: FlaskClient, url: str) -> int:
    """Read a stream up to its first order frame, then hang up: a browser leaving mid-flight."""
    response = client.get(url, buffered=False)
    text = ""
    try:
        for chunk in response.iter_encoded():
            text += chunk.decode()
            if "event: order" in text:
                break
    finally:
        response.close()
    return int(text.split("id: ", 1)[1].split("\n", 1)[0])


@pytest.mark.usefixtures("worker")
def test_a_browser_reconnecting_mid_flight_resumes_after_what_it_saw(client: FlaskClient) -> None:
    order_id = client.post("/api/orders", json=order_body(sku="TRL-002", size="44")).get_json()[
        "id"
    ]
    seen = first_frame_id(client, f"/orders/{order_id}/events")

    status, events = read_events(
        client, f"/orders/{order_id}/events", **{"Last-Event-ID": str(seen)}
    )

    frames = order_frames(events)
    assert status == 200
    assert frames and all(int(f["id"]) > seen for f in frames)
    assert json.loads(frames[-1]["data"])["status"] == "SHIPPED"
