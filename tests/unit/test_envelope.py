"""The CloudEvents envelope and the subscription table."""

from __future__ import annotations

import json

import pytest

from workers.messaging.contracts import ShipmentCancelled, new_event
from workers.messaging.envelope import Envelope, event_type
from workers.messaging.errors import InvalidEvent, UnknownEventType
from workers.messaging.subscriptions import SUBSCRIPTIONS, queue_of, subscribers_of


def sample() -> Envelope:
    return Envelope(
        type=event_type("order.placed"),
        source="/shop",
        subject="3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11",
        correlationid="3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11",
        data={"order_id": "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"},
    )


def test_an_envelope_survives_a_json_round_trip() -> None:
    event = sample()
    assert Envelope.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_an_envelope_carries_the_cloudevents_attributes() -> None:
    wire = sample().to_dict()
    assert wire["specversion"] == "1.0"
    assert wire["type"] == "shoeshop.order.placed.v1"
    assert set(wire) >= {
        "id",
        "source",
        "time",
        "subject",
        "datacontenttype",
        "correlationid",
        "causationid",
    }


def test_a_caused_event_keeps_the_saga_and_names_its_cause() -> None:
    cause = sample()
    shipped = ShipmentCancelled(order_id="3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11")
    effect = new_event(shipped, source="/shipping", cause=cause)
    assert effect.type == ShipmentCancelled.TYPE
    assert effect.correlationid == cause.correlationid
    assert effect.causationid == cause.id
    assert effect.subject == cause.subject
    assert effect.id != cause.id


UUID = "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda e: e.pop("id"), "id: Object missing required field"),
        (lambda e: e.update(type="order.placed"), "type: Expected `str` matching regex"),
        (lambda e: e.update(id="not-a-uuid"), "id: Expected `str` matching regex"),
        # A UUID, but not as this system writes them: the id is stored and compared as text.
        (lambda e: e.update(id=f"urn:uuid:{UUID}"), "id: Expected `str` matching regex"),
        (lambda e: e.update(id="{" + UUID + "}"), "id: Expected `str` matching regex"),
        (lambda e: e.update(id=UUID.upper()), "id: Expected `str` matching regex"),
        (lambda e: e.update(subject="\ud800"), "subject: Expected `str` matching regex"),
        (lambda e: e.update(subject="a\x00b"), "subject: Expected `str` matching regex"),
        (lambda e: e.update(subject="s" * 200), "subject: Expected `str` matching regex"),
        (lambda e: e.update(subject=42), "subject: Expected `str`, got `int`"),
        (lambda e: e.update(correlationid="x"), "correlationid: Expected `str` matching"),
        (lambda e: e.update(source="shop\x00"), "source: Expected `str` matching regex"),
        (lambda e: e.update(data=[1]), "data: Expected `object`, got `array`"),
        (lambda e: e.update(time="yesterday"), "time: Invalid RFC3339 encoded datetime"),
        (lambda e: e.update(time="2026-11-29"), "time: Invalid RFC3339 encoded datetime"),
        (
            lambda e: e.update(time="2026-11-29T20:00:00"),
            "time: Expected `datetime` with a timezone component",
        ),
        (lambda e: e.update(specversion="0.3"), "specversion: Invalid enum value"),
        # Times a database cannot store once in UTC (year 0, year 10000), or none this shop
        # could have written.
        (lambda e: e.update(time="0001-01-01T00:00:00+01:00"), "time: not between 1970 and 9000"),
        (lambda e: e.update(time="9999-12-31T23:59:59-01:00"), "time: not between 1970 and 9000"),
        (lambda e: e.update(time="1969-12-31T23:59:59+00:00"), "time: not between 1970 and 9000"),
    ],
)
def test_a_malformed_envelope_is_refused_naming_what_is_wrong(mutation, message) -> None:  # type: ignore[no-untyped-def]
    wire = sample().to_dict()
    mutation(wire)
    with pytest.raises(InvalidEvent) as caught:
        Envelope.from_dict(wire)
    assert str(caught.value).startswith(f"the envelope is invalid: {message}")


def test_any_rfc_3339_time_is_read_a_lower_case_z_too() -> None:
    wire = sample().to_dict()
    wire["time"] = "2031-01-01T00:00:00z"

    event = Envelope.from_dict(wire)

    assert event.occurred_at.isoformat() == "2031-01-01T00:00:00+00:00"


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEvent):
        Envelope.from_dict("order.placed")


def test_every_subscriber_is_routed_to_its_components_queue() -> None:
    for subscribers in SUBSCRIPTIONS.values():
        for task in subscribers:
            assert queue_of(task) == task.split(".")[0]


def test_an_event_type_nobody_subscribes_to_is_an_error_not_a_silent_drop() -> None:
    with pytest.raises(UnknownEventType):
        subscribers_of(event_type("order.vanished"))
