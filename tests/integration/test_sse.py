"""The tracking page's live feed: Server-Sent Events of the order view, with resume and limits."""

from __future__ import annotations

import json
import queue
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop.web.events_stream import StreamLimits, frame, stream
from shop.web.live import RESYNC, Notice
from tests.support.shop import order_body, wait_for

Event = dict[str, Any]


def read_events(client: FlaskClient, url: str, **headers: str) -> tuple[int, list[Event]]:
    """Every frame of the stream until the server ends it: comments, ids, events and data."""
    response = client.get(url, headers=headers, buffered=False)
    try:
        text = b"".join(response.iter_encoded()).decode()
    finally:
        response.close()
    events = []
    for block in filter(None, text.split("\n\n")):
        event: Event = {}
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            event[field] = value
        events.append(event)
    return response.status_code, events


def order_frames(events: list[Event]) -> list[Event]:
    return [e for e in events if e.get("event") == "order"]


def shipped_order(client: FlaskClient) -> dict[str, Any]:
    order_id = client.post("/api/orders", json=order_body(sku="TRL-002", size="43")).get_json()[
        "id"
    ]
    return wait_for(
        lambda: (
            view
            if (view := client.get(f"/api/orders/{order_id}").get_json())["status"] == "SHIPPED"
            else None
        )
    )


@pytest.mark.usefixtures("worker")
def test_the_stream_sends_each_change_and_ends_when_the_order_ships(client: FlaskClient) -> None:
    order_id = client.post("/api/orders", json=order_body(sku="TRL-002", size="42")).get_json()[
        "id"
    ]

    status, events = read_events(client, f"/orders/{order_id}/events")

    frames = order_frames(events)
    assert status == 200
    assert events[0] == {"retry": "2000"}
    versions = [int(f["id"]) for f in frames]
    assert versions == sorted(versions)
    final = json.loads(frames[-1]["data"])
    assert final["status"] == "SHIPPED"
    assert final["shipment"]["tracking_number"]
    assert int(frames[-1]["id"]) == len(final["timeline"])


@pytest.mark.usefixtures("worker")
def test_a_client_that_has_the_final_state_is_told_to_stop(client: FlaskClient) -> None:
    view = shipped_order(client)
    version = str(len(view["timeline"]))
    url = f"/orders/{view['id']}/events"

    status, events = read_events(client, url, **{"Last-Event-ID": version})

    assert status == 204
    assert events == []


@pytest.mark.usefixtures("worker")
def test_a_client_resuming_from_an_older_version_gets_the_current_view(
    client: FlaskClient,
) -> None:
    view = shipped_order(client)

    status, events = read_events(client, f"/orders/{view['id']}/events", **{"Last-Event-ID": "1"})

    frames = order_frames(events)
    assert status == 200
    assert len(frames) == 1
    assert json.loads(frames[0]["data"])["status"] == "SHIPPED"


@pytest.mark.parametrize("sent", ["²", "٣", "9" * 5000, "-1", "1e3", "\x00"], ids=ascii)
def test_a_last_event_id_that_is_no_version_starts_the_stream_afresh(
    client: FlaskClient, sent: str
) -> None:
    view = shipped_order(client)

    status, events = read_events(client, f"/orders/{view['id']}/events?last_event_id={sent}")

    assert status == 200
    assert json.loads(order_frames(events)[-1]["data"])["status"] == "SHIPPED"


def test_an_unknown_order_has_no_stream(client: FlaskClient) -> None:
    response = client.get("/orders/00000000-0000-4000-8000-000000000000/events")

    assert response.status_code == 404


def test_streams_beyond_the_limit_are_turned_away_to_polling(app: Flask) -> None:
    from shop import create_app

    full = create_app({"TESTING": True, "SSE_MAX_STREAMS": 0})
    order_id = app.test_client().post("/api/orders", json=order_body()).get_json()["id"]

    response = full.test_client().get(f"/orders/{order_id}/events")

    assert response.status_code == 503
    assert response.headers["Retry-After"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeWaiter:
    """Hands the stream its items, one per wait; with none left, every wait times out on the
    fake clock."""

    def __init__(self, clock: FakeClock, items: list[Any]) -> None:
        self.clock = clock
        self.items = items

    def get(self, timeout: float) -> Any:
        if self.items:
            return self.items.pop(0)
        self.clock.now += timeout
        raise queue.Empty


def view_with(status: str, events: int) -> dict[str, Any]:
    return {"id": "o1", "status": status, "timeline": [{"type": "t"}] * events}


def run(
    first: dict[str, Any],
    items: list[Any],
    limits: StreamLimits,
    seen: int | None = None,
    reads: list[dict[str, Any]] | None = None,
) -> list[str]:
    clock = FakeClock()
    waiter = FakeWaiter(clock, items)
    stored = iter(reads or [])
    return list(
        stream("o1", first, seen, limits, lambda _id: next(stored), waiter, clock=clock)  # type: ignore[arg-type]
    )


def test_a_quiet_stream_sends_heartbeats_and_ends_at_its_lifetime() -> None:
    limits = StreamLimits(heartbeat_s=2.0, max_stream_s=10.0)

    sent = run(view_with("PAYMENT_PENDING", 2), [], limits)

    assert sent[0] == "retry: 2000\n\n"
    assert sent[1] == frame(view_with("PAYMENT_PENDING", 2))
    assert sent.count(": heartbeat\n\n") == 4  # at 2, 4, 6 and 8 seconds; it ends at 10
    assert len(sent) == 6


def test_a_resumed_stream_does_not_repeat_what_the_client_has() -> None:
    limits = StreamLimits(heartbeat_s=60.0, max_stream_s=60.0)
    pushed = [Notice(view_with("PAID", 3), 1.5), Notice(view_with("SHIPPED", 4), 2.5)]

    sent = run(view_with("PAID", 3), pushed, limits, seen=3)

    assert sent == ["retry: 2000\n\n", frame(view_with("SHIPPED", 4), 2.5)]
    assert frame(view_with("SHIPPED", 4)).startswith("id: 4\nevent: order\ndata: {")
    assert frame(view_with("SHIPPED", 4), 2.5).startswith(": committed 2.500000\nid: 4\n")


def test_a_notice_overtaken_by_a_later_one_is_not_sent() -> None:
    limits = StreamLimits(heartbeat_s=60.0, max_stream_s=60.0)
    pushed = [Notice(view_with("PAID", 3), 2.0), Notice(view_with("PAYMENT_PENDING", 2), 1.0)]

    sent = run(
        view_with("PAYMENT_PENDING", 2), [*pushed, Notice(view_with("SHIPPED", 4), 3.0)], limits
    )

    assert [re.findall(r"^id: (\d+)$", text, re.M) for text in sent[1:]] == [["2"], ["3"], ["4"]]


def test_a_resync_reads_the_order_again() -> None:
    limits = StreamLimits(heartbeat_s=60.0, max_stream_s=60.0)

    sent = run(view_with("PAID", 3), [RESYNC], limits, reads=[view_with("SHIPPED", 4)])

    assert sent[-1] == frame(view_with("SHIPPED", 4))
