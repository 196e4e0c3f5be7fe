"""Event contracts: one model per event, old versions upcast to the current one, schemas
generated from the models and checked for breaking changes."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec
import pytest
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine

from shop import readmodel
from shop.cancel import _cancellation_requested
from shop.checkout import _placed_event
from shop.erasure import erased_events
from shop.validation import parse_checkout
from tests.support.json_schema import values_of
from tests.support.shop import order_body
from workers.messaging import contracts, deadletters, schemas
from workers.messaging.consumer import Subscriber
from workers.messaging.contracts import MODELS, OrderStatus, PaymentSucceeded, Shape, wire_type
from workers.messaging.envelope import Envelope, event_type
from workers.messaging.errors import InvalidEvent, InvariantViolation, UnknownEventType
from workers.messaging.outbox import Outbox
from workers.messaging.schemas import ADVICE, Schema, breaking_changes, generated, render
from workers.messaging.subscriptions import SUBSCRIPTIONS, subscribers_of, types_heard_by
from workers.messaging.tables import kit_metadata
from workers.messaging.versions import (
    UPCASTERS,
    Data,
    current_type,
    next_version,
    parse,
    upcast,
)
from workers.operations import dlq
from workers.operations.attention import command as operator_command
from workers.orders import domain
from workers.orders.announcements import announce, parse_placed
from workers.orders.domain import Order
from workers.orders.events import DomainEvent
from workers.payments import handlers as payments
from workers.payments import store as payments_store
from workers.payments.gateway import Charged, Declined, NotRefunded, Refunded
from workers.shipping import handlers as shipping
from workers.shipping import store as shipping_store

ORDER_ID = "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"
PAY, REFUND = "7d3c2f6e-1a2b-4c5d-8e9f-0a1b2c3d4e5f", "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
SECOND_REFUND = "5b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
PLACED = wire_type("order.placed")
STATUS_CHANGED = wire_type("order.status_changed")


def wire(event: Envelope) -> Envelope:
    """The event as a consumer receives it: through JSON and the envelope's own check."""
    return Envelope.from_dict(json.loads(json.dumps(event.to_dict())))


# --- the registries agree with each other -------------------------------------------------


def test_every_subscribed_event_type_has_a_contract_and_every_contract_a_subscriber() -> None:
    assert set(MODELS) == set(SUBSCRIPTIONS)


def test_every_upcaster_leads_from_an_old_version_to_a_current_one() -> None:
    for old in UPCASTERS:
        assert old not in MODELS, f"{old} is current and cannot also be upcast"
        assert current_type(old) in MODELS, f"{old} is upcast to {current_type(old)}, unknown"


def test_the_shop_ranks_every_status_the_contract_allows() -> None:
    assert set(get_args(OrderStatus)) == set(readmodel.RANK)


def test_a_parsed_contract_cannot_be_changed() -> None:
    succeeded = PaymentSucceeded(order_id=ORDER_ID, payment_id=PAY, charge_id="ch_1")
    with pytest.raises(AttributeError, match="immutable"):
        succeeded.charge_id = "ch_2"


# --- (a) the committed schemas -------------------------------------------------------------

COMMITTED = sorted(schemas.EVENTS_DIR.glob("*.json"))


@pytest.mark.parametrize("type_", sorted(MODELS))
def test_the_committed_schema_of_each_current_version_is_what_its_model_generates(
    type_: str,
) -> None:
    path = schemas.path_of(type_)
    regenerate = "regenerate it: python -m workers.messaging.schemas"
    assert path.exists(), f"{path} is missing; {regenerate}"
    assert path.read_text(encoding="utf-8") == render(generated()[type_]), (
        f"{path} is not what the model generates; {regenerate}"
    )


@pytest.mark.parametrize(
    "path", [path for path in COMMITTED if path.stem in MODELS], ids=lambda path: path.stem
)
def test_the_current_model_of_a_version_breaks_nothing_its_committed_schema_promised(
    path: Path,
) -> None:
    committed = json.loads(path.read_text(encoding="utf-8"))
    breaks = breaking_changes(committed, generated()[path.stem])
    assert not breaks, f"{path.stem} changed in a breaking way ({'; '.join(breaks)}): {ADVICE}"


def contract_classes() -> list[type[msgspec.Struct]]:
    return [
        value
        for value in vars(contracts).values()
        if isinstance(value, type) and issubclass(value, msgspec.Struct)
    ]


@pytest.mark.parametrize("model", contract_classes(), ids=lambda model: model.__name__)
def test_a_contract_checks_nothing_its_schema_does_not_say(model: type[msgspec.Struct]) -> None:
    # The breaking-change rule reads only the schemas: a check in code (__post_init__, a method
    # a field goes through) would narrow a version without the rule seeing it.
    assert "__post_init__" not in vars(model), f"{model.__name__}: put the limit in the type"


def body_of(path: Path, data: st.DataObject) -> dict[str, Any]:
    schema = schemas.inlined(json.loads(path.read_text(encoding="utf-8")))
    body: dict[str, Any] = data.draw(values_of(schema), label="data")
    return body


@pytest.mark.parametrize(
    "path", [path for path in COMMITTED if path.stem in MODELS], ids=lambda path: path.stem
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_body_the_schema_of_a_current_version_allows_is_read_by_its_model(
    path: Path, data: st.DataObject
) -> None:
    # What the schema promises, the model takes: the breaking-change rule's check, from the
    # other side.
    parse(Envelope(type=path.stem, source="/test", subject=ORDER_ID, data=body_of(path, data)))


@pytest.mark.parametrize("old", sorted(UPCASTERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_old_version_is_read_once_its_upcasters_repair_what_they_can(
    old: str, data: st.DataObject
) -> None:
    # An old version's schema may allow what the current one refuses (v2 bounds every string).
    # What an old producer could write is the current shape with the faults the upcasters
    # repair (v1: control characters and lone surrogates in text), and that is read; anything
    # else the old schema allows is refused as an invalid event naming the field, never another
    # error (it is parked, not lost).
    current = schemas.inlined(json.loads(schemas.path_of(current_type(old)).read_text("utf-8")))
    written = data.draw(values_of(current, text_faults=True), label="written by 0.1.0")
    parse(Envelope(type=old, source="/test", subject=ORDER_ID, data=written))
    anything = body_of(schemas.path_of(old), data)
    try:
        parse(Envelope(type=old, source="/test", subject=ORDER_ID, data=anything))
    except InvalidEvent as exc:
        assert f"{current_type(old)} data is invalid: " in str(exc)


def test_every_committed_schema_is_of_a_version_consumers_still_read() -> None:
    unread = [path.name for path in COMMITTED if path.stem not in {*MODELS, *UPCASTERS}]
    assert not unread, f"no model or upcaster reads {unread}: consumers read every version"


def test_regenerating_refuses_to_overwrite_a_schema_with_a_breaking_change(tmp_path: Path) -> None:
    # Given a published payment.succeeded that had a field the model has since lost
    type_ = wire_type("payment.succeeded")
    published = copy.deepcopy(generated()[type_])
    root(published)["properties"]["gateway"] = {"type": "string"}
    schemas.path_of(type_, tmp_path).write_text(render(published), encoding="utf-8")
    # When the schemas are regenerated
    refused = schemas.write(tmp_path)
    # Then that one is kept as published and the reason given; the others are written
    assert refused == {type_: ["gateway: removed (or renamed)"]}
    assert json.loads(schemas.path_of(type_, tmp_path).read_text(encoding="utf-8")) == published
    assert schemas.path_of(PLACED, tmp_path).exists()


# --- (b) what breaks and what does not ------------------------------------------------------


def schema_of(type_: str) -> Schema:
    return copy.deepcopy(generated()[type_])


def root(schema: Schema) -> dict[str, Any]:
    """The event's own object: msgspec writes the schema as a reference to it among ``$defs``."""
    model: dict[str, Any] = schema["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    return model


def placed_with(edit: Callable[[Schema], object]) -> Schema:
    schema = schema_of(PLACED)
    edit(schema)
    return schema


def item_field(schema: Schema, name: str) -> dict[str, Any]:
    field: dict[str, Any] = schema["$defs"]["PricedItem"]["properties"][name]
    return field


def add_field(schema: Schema, name: str, *, required: bool) -> None:
    root(schema)["properties"][name] = {"type": "string"}
    if required:
        root(schema)["required"].append(name)


def remove_field(schema: Schema, name: str) -> None:
    del root(schema)["properties"][name]
    root(schema)["required"].remove(name)


def rename_email(schema: Schema) -> None:
    customer = schema["$defs"]["Customer"]
    customer["properties"]["mail"] = customer["properties"].pop("email")
    customer["required"] = ["name", "mail"]


def test_an_unchanged_schema_breaks_nothing() -> None:
    assert breaking_changes(schema_of(PLACED), schema_of(PLACED)) == []


@pytest.mark.parametrize(
    ("edit", "breaks"),
    [
        (lambda s: remove_field(s, "currency"), ["currency: removed (or renamed)"]),
        (
            lambda s: add_field(s, "gift_note", required=True),
            ["gift_note: a new required field"],
        ),
        (
            rename_email,
            ["customer.email: removed (or renamed)", "customer.mail: a new required field"],
        ),
        (
            lambda s: item_field(s, "quantity").update(maximum=5),
            ["items[].quantity: maximum narrowed from 10 to 5"],
        ),
        (
            lambda s: root(s)["properties"]["total_cents"].update(type="string"),
            ["total_cents: type narrowed, integer no longer accepted (now string)"],
        ),
        (
            lambda s: item_field(s, "sku").update(maxLength=8),
            ["items[].sku: maxLength narrowed from none to 8"],
        ),
        (
            lambda s: root(s)["properties"]["items"].update(minItems=2),
            ["items: minItems narrowed from 1 to 2"],
        ),
        (
            lambda s: s["$defs"]["Customer"]["properties"]["email"].update(format="email"),
            ["customer.email: format added: 'email'"],
        ),
    ],
    ids=[
        "field removed",
        "required field added",
        "field renamed",
        "smaller maximum",
        "integer to string",
        "shorter maximum length",
        "more items needed",
        "format added",
    ],
)
def test_a_breaking_edit_of_order_placed_is_reported_at_its_path(
    edit: Callable[[Schema], object], breaks: list[str]
) -> None:
    assert breaking_changes(schema_of(PLACED), placed_with(edit)) == breaks


def test_a_maximum_lowered_below_the_old_one_breaks() -> None:
    old = placed_with(lambda s: item_field(s, "quantity").update(maximum=10))
    new = placed_with(lambda s: item_field(s, "quantity").update(maximum=5))
    assert breaking_changes(old, new) == ["items[].quantity: maximum narrowed from 10 to 5"]


def test_a_nullable_field_that_is_no_longer_nullable_breaks() -> None:
    new = schema_of(STATUS_CHANGED)
    root(new)["properties"]["reason"] = {"type": "string"}
    assert breaking_changes(schema_of(STATUS_CHANGED), new) == [
        "reason: type narrowed, null no longer accepted (now string)"
    ]


def test_an_optional_field_made_required_breaks() -> None:
    new = schema_of(STATUS_CHANGED)
    root(new)["required"].append("shipment")
    assert breaking_changes(schema_of(STATUS_CHANGED), new) == ["shipment: now required"]


def test_an_enum_that_loses_a_value_breaks() -> None:
    new = schema_of(STATUS_CHANGED)
    root(new)["properties"]["status"]["enum"].remove("CANCELLED")
    assert breaking_changes(schema_of(STATUS_CHANGED), new) == [
        "status: no longer allows the values ['CANCELLED']"
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (lambda s: None, lambda s: add_field(s, "gift_note", required=False)),
        (
            lambda s: item_field(s, "quantity").update(maximum=10),
            lambda s: item_field(s, "quantity").update(maximum=20),
        ),
        (lambda s: None, lambda s: item_field(s, "unit_price_cents").update(minimum=-1)),
        (lambda s: None, lambda s: root(s)["properties"]["total_cents"].update(type="number")),
        (
            lambda s: None,
            lambda s: s["$defs"]["Address"]["properties"]["country"].pop("pattern"),
        ),
        (
            lambda s: None,
            lambda s: root(s)["properties"].update(
                currency={"anyOf": [{"type": "string"}, {"type": "null"}]}
            ),
        ),
    ],
    ids=[
        "optional field added",
        "larger maximum",
        "lower minimum",
        "integer to number",
        "pattern dropped",
        "made nullable",
    ],
)
def test_a_compatible_edit_of_order_placed_breaks_nothing(
    before: Callable[[Schema], object], after: Callable[[Schema], object]
) -> None:
    assert breaking_changes(placed_with(before), placed_with(after)) == []


def test_a_changed_pattern_breaks() -> None:
    old = placed_with(lambda s: item_field(s, "sku").update(pattern="^[A-Z]+$"))
    new = placed_with(lambda s: item_field(s, "sku").update(pattern="^[A-Z]+-[0-9]+$"))
    assert breaking_changes(old, new) == [
        "items[].sku: pattern changed from '^[A-Z]+$' to '^[A-Z]+-[0-9]+$'"
    ]


def test_an_enum_that_gains_a_value_breaks_nothing() -> None:
    new = schema_of(STATUS_CHANGED)
    root(new)["properties"]["status"]["enum"].append("RETURNED")
    assert breaking_changes(schema_of(STATUS_CHANGED), new) == []


def untyped(enum: dict[str, Any]) -> dict[str, Any]:
    """A literal as msgspec writes it: the enum alone, its type left to its values."""
    return {key: value for key, value in enum.items() if key != "type"}


def typed(enum: dict[str, Any]) -> dict[str, Any]:
    """A literal as pydantic writes it (the first committed schemas): the enum and its type."""
    return {**enum, "type": "string"}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (typed, untyped),
        (untyped, typed),
        (untyped, lambda status: {"type": "string"}),
        (untyped, lambda status: {"anyOf": [untyped(status), {"type": "null"}]}),
    ],
    ids=["type left out", "type written out", "widened to any string", "made nullable"],
)
def test_a_literal_compares_by_its_values_whether_its_type_is_written_or_not(
    before: Callable[[dict[str, Any]], dict[str, Any]],
    after: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    old, new = schema_of(STATUS_CHANGED), schema_of(STATUS_CHANGED)
    status = root(old)["properties"]["status"]
    root(old)["properties"]["status"] = before(status)
    root(new)["properties"]["status"] = after(status)
    assert breaking_changes(old, new) == []


def test_an_untyped_literal_that_changes_its_type_breaks() -> None:
    old = schema_of(STATUS_CHANGED)
    root(old)["properties"]["status"] = untyped(root(old)["properties"]["status"])
    new = schema_of(STATUS_CHANGED)
    root(new)["properties"]["status"] = {"enum": [1, 2]}
    assert breaking_changes(old, new) == [
        "status: type narrowed, string no longer accepted (now integer)"
    ]


# --- (c) upcasting: made-up next versions of order.cancellation_requested --------------------

# The current version as the shop writes it, and two made-up versions after it.
NOW = wire_type("order.cancellation_requested")
NEXT = next_version(NOW)
LATER = next_version(NEXT)


class CancellationRequestedNext(Shape, frozen=True):
    """Test only: the reason is renamed, and who asked is said."""

    order_id: str
    reason_code: str
    requested_by: Literal["customer", "operator"]


class CancellationRequestedLater(CancellationRequestedNext, frozen=True):
    """Test only: the next version plus the channel the request came through."""

    channel: str


def now_to_next(data: Data) -> Data:
    return {"order_id": data["order_id"], "reason_code": data["reason"], "requested_by": "customer"}


def next_to_later(data: Data) -> Data:
    return {**data, "channel": "web"}


def without_now(**models: type[Shape]) -> dict[str, type[Shape]]:
    return {**{type_: model for type_, model in MODELS.items() if type_ != NOW}, **models}


def cancellation_now(data: dict[str, Any] | None = None) -> Envelope:
    """A body of the current version as the shop builds it, or with other data."""
    event = _cancellation_requested(ORDER_ID)
    return wire(event if data is None else dataclasses.replace(event, data=data))


def test_an_event_is_upcast_then_validated_against_the_next_model() -> None:
    event = cancellation_now()

    read = parse(event, without_now(**{NEXT: CancellationRequestedNext}), {NOW: now_to_next})

    assert read.type == NEXT
    assert read.data == {
        "order_id": ORDER_ID,
        "reason_code": "customer_request",
        "requested_by": "customer",
    }
    assert (read.id, read.subject, read.time) == (event.id, event.subject, event.time)


def test_upcasters_chain_from_every_old_version_to_the_current_one() -> None:
    models = without_now(**{LATER: CancellationRequestedLater})
    upcasters = {NOW: now_to_next, NEXT: next_to_later}
    nxt = Envelope(
        type=NEXT,
        source="/shop",
        subject=ORDER_ID,
        data={"order_id": ORDER_ID, "reason_code": "customer_request", "requested_by": "operator"},
    )

    from_now = parse(cancellation_now(), models, upcasters)
    from_next = parse(nxt, models, upcasters)

    assert (from_now.type, from_now.data["channel"], from_now.data["requested_by"]) == (
        LATER,
        "web",
        "customer",
    )
    assert (from_next.type, from_next.data["requested_by"]) == (LATER, "operator")


def test_an_event_already_in_its_current_version_is_not_upcast() -> None:
    event = Envelope(type=NEXT, source="/shop", subject=ORDER_ID, data={"order_id": ORDER_ID})
    assert upcast(event, {NOW: now_to_next}) == event


def test_an_old_body_its_upcaster_cannot_read_is_an_invalid_event() -> None:
    event = cancellation_now({"order_id": ORDER_ID})  # no reason
    with pytest.raises(InvalidEvent, match=r"order\.cancellation_requested\.v2 .*cannot be upcast"):
        parse(event, without_now(**{NEXT: CancellationRequestedNext}), {NOW: now_to_next})


def test_upcast_data_the_new_model_refuses_is_an_invalid_event_naming_the_field() -> None:
    event = cancellation_now({"order_id": ORDER_ID, "reason": 7})
    with pytest.raises(InvalidEvent, match="reason_code: Expected `str`, got `int`"):
        parse(event, without_now(**{NEXT: CancellationRequestedNext}), {NOW: now_to_next})


def test_the_made_up_next_version_is_a_breaking_change_that_needed_its_version() -> None:
    breaks = breaking_changes(schema_of(NOW), schemas.schema_of(CancellationRequestedNext))
    assert "reason: removed (or renamed)" in breaks
    assert "reason_code: a new required field" in breaks


@pytest.fixture
def next_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """The made-up next version as it would be released: its model and subscribers keyed by
    it, the upcaster from today's; monkeypatch puts the real tables back after the test."""
    monkeypatch.setitem(SUBSCRIPTIONS, NEXT, SUBSCRIPTIONS[NOW])
    monkeypatch.delitem(SUBSCRIPTIONS, NOW)
    monkeypatch.setitem(MODELS, NEXT, CancellationRequestedNext)
    monkeypatch.delitem(MODELS, NOW)
    monkeypatch.setitem(UPCASTERS, NOW, now_to_next)


@pytest.mark.usefixtures("next_in_production")
def test_a_stored_event_is_sent_to_the_subscribers_of_its_next_version() -> None:
    assert subscribers_of(NOW) == ("orders.on_cancellation_requested",)


@pytest.mark.usefixtures("next_in_production")
def test_a_replay_looks_for_every_version_its_task_hears() -> None:
    heard = sorted(types_heard_by("orders.on_cancellation_requested"))
    assert heard == [event_type("order.cancellation_requested", 1), NOW, NEXT]


@pytest.mark.usefixtures("next_in_production")
def test_a_subscriber_task_hands_its_handler_an_old_event_in_the_next_version() -> None:
    # Given a task that subscribes to the event, and today's body as an old outbox row holds it
    app = Celery("contracts-test", set_as_current=False)
    heard: list[Envelope] = []

    class Hearing(Subscriber):
        name = "orders.on_cancellation_requested"

        def apply(self, event: Envelope, attempts: int) -> None:
            heard.append(event)

    on_cancellation_requested = app.register_task(Hearing())
    body = cancellation_now().to_dict()
    # When the task runs
    on_cancellation_requested(body)
    # Then its handler hears it in the current version; the body itself is left as it was
    assert [(event.type, event.data["reason_code"]) for event in heard] == [
        (NEXT, "customer_request")
    ]
    assert body["type"] == NOW


# --- (d) every event the producers build parses ---------------------------------------------


def placed_by_the_shop() -> Envelope:
    request = parse_checkout(order_body(quantity=2), date(2026, 11, 26))
    lines = [  # as checkout._price_lines prices them from the catalogue
        {
            "sku": "RUN-001",
            "name": "Road Runner",
            "size": "42",
            "quantity": 2,
            "unit_price_cents": 12900,
            "currency": "EUR",
        }
    ]
    return _placed_event(ORDER_ID, request, lines, "sealed-card-token")


Decision = Callable[[Order | None], list[DomainEvent]]


def announced_by_orders(*decisions: Decision) -> list[Envelope]:
    """What orders emits along one path of the saga, built as handlers.decide builds it."""
    cause = placed_by_the_shop()
    history: list[DomainEvent] = []
    emitted: list[Envelope] = []
    for decision in decisions:
        before = domain.fold(history)
        new_events = decision(before)
        history += new_events
        after = domain.fold(history)
        assert after is not None
        emitted += announce(before, after, new_events, "sealed-card-token", cause)
    return emitted


def every_saga_path() -> list[Envelope]:
    placed = parse_placed(parse(wire(placed_by_the_shop())).data)
    due = placed_by_the_shop().occurred_at + timedelta(minutes=15)

    def place(order: Order | None) -> list[DomainEvent]:
        return domain.place(order, placed, PAY, due)

    def pay(order: Order | None) -> list[DomainEvent]:
        return domain.record_payment(order, PAY, "ch_1", REFUND)

    return [
        *announced_by_orders(
            place, pay, lambda o: domain.record_dispatch(o, "s-1", "PostNL", "3SABC")
        ),
        *announced_by_orders(place, lambda o: domain.record_decline(o, PAY, "card_declined")),
        *announced_by_orders(
            place,
            pay,
            lambda o: domain.request_cancellation(o, "customer_request"),
            lambda o: domain.record_shipment_stopped(o, REFUND),
            lambda o: domain.record_refund(o, REFUND),
        ),
        *announced_by_orders(place, lambda o: domain.expire(o, due + timedelta(seconds=1)), pay),
        # A refund refused for good, asked for again by an operator, then closed with a note.
        *announced_by_orders(
            place,
            lambda o: domain.expire(o, due + timedelta(seconds=1)),
            pay,
            lambda o: domain.record_refund_failure(o, REFUND, "expired_or_canceled_card"),
            lambda o: domain.act(o, "retry_refund", "card reissued", SECOND_REFUND),
            lambda o: domain.act(o, "close", "refunded by bank transfer", SECOND_REFUND),
        ),
    ]


def emitted_by(handler: Callable[[Connection, Outbox], object]) -> list[Envelope]:
    """What a component's handler emits, run against a throwaway database of its tables."""
    engine = create_engine("sqlite://")
    for metadata in (kit_metadata, payments_store.metadata, shipping_store.metadata):
        metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            outbox = Outbox(conn)
            handler(conn, outbox)
    finally:
        engine.dispose()
    return outbox.emitted


def first(events: list[Envelope], name: str) -> Envelope:
    return parse(wire(next(event for event in events if event.name == name)))


@pytest.fixture(scope="module")
def produced() -> list[Envelope]:
    """One of every event the producers emit, each built by its producer's own code."""
    orders = every_saga_path()
    payment, refund = first(orders, "payment.requested"), first(orders, "refund.requested")
    parcel, stop = (
        first(orders, "shipment.requested"),
        first(orders, "shipment.cancellation_requested"),
    )
    # Parking the payment request tells the shop (operations' outbox, written with the letter).
    delayed = deadletters.parked_notice(
        payment.to_dict(), ORDER_ID, "payments", payment.id, payment.occurred_at, "invalid"
    )
    assert delayed is not None
    # Replaying that letter tells the shop the order resumed.
    replayed = dlq.replayed_notice(ORDER_ID, payment.id)
    assert replayed is not None
    return [
        placed_by_the_shop(),
        _cancellation_requested(ORDER_ID),
        *orders,
        *emitted_by(lambda c, box: payments.record_outcome(c, payment, box, Charged("ch_1"))),
        *emitted_by(
            lambda c, box: payments.record_outcome(c, payment, box, Declined("do_not_honor"))
        ),
        *emitted_by(lambda c, box: payments.record_refund(c, refund, box, Refunded("re_1"))),
        *emitted_by(
            lambda c, box: payments.record_refund(c, refund, box, NotRefunded("card_cancelled"))
        ),
        operator_command(ORDER_ID, "close", "settled by bank transfer"),
        *emitted_by(lambda c, box: shipping.on_shipment_requested(c, parcel, box)),
        *emitted_by(lambda c, box: shipping.on_shipment_cancellation_requested(c, stop, box)),
        delayed,
        replayed,
        *erased_events([ORDER_ID]),
    ]


def test_the_producers_emit_every_event_type_there_is(produced: list[Envelope]) -> None:
    assert {event.type for event in produced} == set(MODELS)


def test_every_event_a_producer_builds_parses_with_every_field_it_carries(
    produced: list[Envelope],
) -> None:
    for event in produced:
        read = parse(wire(event))
        # Nothing the producer sends is unknown to the model (it would be dropped) or changed.
        assert {key: read.data.get(key) for key in event.data} == event.data, event.type


def test_the_status_change_to_shipped_carries_its_parcel_through_the_contract(
    produced: list[Envelope],
) -> None:
    shipped = [e for e in produced if e.name == "order.status_changed" and "shipment" in e.data]
    assert [parse(wire(event)).data["shipment"] for event in shipped] == [
        {"carrier": "PostNL", "tracking_number": "3SABC"}
    ]


# --- (e) invalid data is refused, naming the field -----------------------------------------


def placed_data(edit: Callable[[dict[str, Any]], object]) -> Envelope:
    event = placed_by_the_shop()
    data = copy.deepcopy(event.data)
    edit(data)
    return Envelope(type=event.type, source=event.source, subject=event.subject, data=data)


def refusal(event: Envelope) -> str:
    with pytest.raises(InvalidEvent) as refused:
        parse(event)
    return str(refused.value)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda data: data["payment"].pop("token"), "payment.token: Object missing required field"),
        (lambda data: data.pop("order_id"), "order_id: Object missing required field"),
        (
            lambda data: data["items"][0].update(quantity="2"),
            "items[0].quantity: Expected `int`, got `str`",
        ),
        (
            lambda data: data["items"][0].update(quantity=True),
            "items[0].quantity: Expected `int`, got `bool`",
        ),
        (lambda data: data.update(total_cents=1.0), "total_cents: Expected `int`, got `float`"),
        (
            lambda data: data["items"][0].update(quantity=0),
            "items[0].quantity: Expected `int` >= 1",
        ),
        (
            lambda data: data["customer"].update(name=""),
            "customer.name: Expected `str` of length >= 1",
        ),
        (lambda data: data.update(items=[]), "items: Expected `array` of length >= 1"),
        (lambda data: data.update(customer=None), "customer: Expected `object`, got `null`"),
    ],
    ids=[
        "nested field missing",
        "field missing",
        "number as a string",
        "boolean as a number",
        "float as an integer",
        "below its minimum",
        "empty text",
        "no items",
        "null object",
    ],
)
def test_data_that_breaks_the_model_is_an_invalid_event_naming_the_path_and_what_is_wrong(
    edit: Callable[[dict[str, Any]], object], named: str
) -> None:
    assert refusal(placed_data(edit)) == f"{PLACED} data is invalid: {named}"


def test_of_several_failing_fields_one_is_named_whole() -> None:
    # msgspec stops at the first failure it meets; the whole message is parked, so one is enough.
    def break_two(data: dict[str, Any]) -> None:
        del data["order_id"]
        data["items"][0]["quantity"] = 0

    assert refusal(placed_data(break_two)) in {
        f"{PLACED} data is invalid: order_id: Object missing required field",
        f"{PLACED} data is invalid: items[0].quantity: Expected `int` >= 1",
    }


def status_changed(status: object) -> Envelope:
    data = {"order_id": ORDER_ID, "status": status, "reason": None}
    return Envelope(type=STATUS_CHANGED, source="/orders", subject=ORDER_ID, data=data)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (
            placed_data(lambda data: data["payment"].update(token=4242424242424242)),
            "payment.token: Expected `str`, got `int`",
        ),
        (status_changed("4242424242424242"), "status: Invalid enum value"),
        (status_changed(4242424242424242), "status: Expected `str`, got `int`"),
    ],
    ids=["wrong type", "not one of the literal's values", "literal of the wrong type"],
)
def test_a_refusal_names_the_field_but_never_quotes_its_value(event: Envelope, named: str) -> None:
    message = refusal(event)
    assert message.endswith(f" data is invalid: {named}")
    assert "4242" not in message


def test_a_field_the_contract_does_not_know_is_ignored() -> None:
    event = placed_data(lambda data: data.update(gift_note="happy birthday"))
    assert "gift_note" not in parse(event).data


def test_a_type_no_contract_reads_is_an_unknown_event_type() -> None:
    event = Envelope(type=event_type("order.vanished"), source="/x", subject=ORDER_ID, data={})
    with pytest.raises(UnknownEventType):
        parse(event)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (contracts.ShipmentCancelled(order_id="order-1"), "order_id: Expected `str` matching"),
        (
            contracts.PaymentDeclined(order_id=ORDER_ID, payment_id=PAY, reason="Card declined!"),
            "reason: Expected `str` matching",
        ),
        (
            contracts.RefundRequested(
                order_id=ORDER_ID, payment_id=PAY, amount_cents=2**31, refund_id=REFUND
            ),
            "amount_cents: Expected `int` <= 2147483647",
        ),
    ],
    ids=["not a uuid", "not a code", "beyond PostgreSQL's INTEGER"],
)
def test_a_producer_cannot_build_an_event_its_consumers_would_park(
    data: contracts.Event, named: str
) -> None:
    with pytest.raises(InvariantViolation) as caught:
        contracts.new_event(data, source="/test", subject=ORDER_ID)
    assert str(caught.value).startswith(f"{data.TYPE} would be invalid: {named}")


def test_a_v1_order_placed_with_what_0_1_0_let_into_text_reads_as_v2() -> None:
    # 0.1.0's checkout let a tab into a name and any control character but whitespace into an
    # email address ("ada\x01@example.com" passed its [^@\s] check); such an order may wait on
    # the broker or in an outbox across the upgrade.
    data = copy.deepcopy(placed_by_the_shop().data)
    data["customer"] = {"name": "Ada\tLovelace", "email": "ada\x01@exam\x7fple.com"}
    data["shipping_address"]["line1"] = "Main Street 1\nBack door"
    v1 = Envelope(type=event_type("order.placed", 1), source="/shop", subject=ORDER_ID, data=data)

    read = parse(wire(v1))

    assert read.type == PLACED
    assert read.data["customer"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
    assert read.data["shipping_address"]["line1"] == "Main Street 1 Back door"


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where the strings are in a body: a path of keys and indexes to each."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in string_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in string_paths(item, (*path, index))]
    return []


@pytest.mark.parametrize("tail", ["\n", "\u2028", "\u200f", "\u061c"], ids=ascii)
def test_no_string_of_an_event_may_end_in_a_line_break_or_a_bidi_mark(tail: str) -> None:
    # Python's "$" (msgspec's patterns) matches before a final line feed; every pattern of the
    # contracts ends where the text ends, as JSON Schema's does.
    placed = placed_by_the_shop()
    for path in string_paths(placed.data):
        data = copy.deepcopy(placed.data)
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] += tail
        with pytest.raises(InvalidEvent):
            parse(wire(dataclasses.replace(placed, data=data)))


@pytest.mark.parametrize("field", ["id", "subject", "correlationid", "source", "type"], ids=str)
def test_no_attribute_of_an_envelope_may_end_in_a_line_feed(field: str) -> None:
    body = placed_by_the_shop().to_dict()
    body[field] += "\n"
    with pytest.raises(InvalidEvent, match=f"the envelope is invalid: {field}: "):
        Envelope.from_dict(body)
