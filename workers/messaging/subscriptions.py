"""The one subscription table: which subscriber tasks hear each event; the flow on a screen.

It is the only place a subscription is written: each component's tasks are registered from it
(``consumer.register_subscribers``), each named after its handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.settings import QUEUES
from workers.messaging.contracts import wire_type
from workers.messaging.envelope import Envelope
from workers.messaging.errors import InvalidEvent, UnknownEventType
from workers.messaging.versions import UPCASTERS, current_type, upcast

# Task names are strings so a publisher never imports its subscribers. Keyed by the current
# version of each event; an older version is heard by the same tasks (see subscribers_of).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    wire_type("order.placed"): ("orders.on_order_placed", "notifications.on_order_placed"),
    wire_type("payment.requested"): ("payments.on_payment_requested",),
    wire_type("payment.succeeded"): ("orders.on_payment_succeeded",),
    wire_type("payment.declined"): ("orders.on_payment_declined",),
    wire_type("shipment.requested"): ("shipping.on_shipment_requested",),
    # The shop learns the parcel from order.status_changed(SHIPPED), which carries it.
    wire_type("shipment.dispatched"): ("orders.on_shipment_dispatched",),
    wire_type("order.status_changed"): (
        "shop.on_order_status_changed",
        "notifications.on_order_status_changed",
    ),
    wire_type("order.cancellation_requested"): ("orders.on_cancellation_requested",),
    wire_type("refund.requested"): ("payments.on_refund_requested",),
    wire_type("payment.refunded"): ("orders.on_payment_refunded",),
    wire_type("payment.refund_failed"): ("orders.on_payment_refund_failed",),
    wire_type("order.attention_changed"): ("shop.on_order_attention_changed",),
    wire_type("order.operator_action_requested"): ("orders.on_operator_action_requested",),
    wire_type("shipment.cancellation_requested"): ("shipping.on_shipment_cancellation_requested",),
    wire_type("shipment.cancelled"): ("orders.on_shipment_cancelled",),
    wire_type("message.parked"): ("shop.on_message_parked", "orders.on_message_parked"),
    wire_type("message.replayed"): ("shop.on_message_replayed",),
    wire_type("customer.erased"): (
        "orders.on_customer_erased",
        "shipping.on_customer_erased",
        "notifications.on_customer_erased",
    ),
}


@dataclass(frozen=True)
class Interest:
    """A subscriber that acts on some events of a type only: those whose ``data[field]``, in the
    type's current version, is not one of ``ignored``. It is sent only those (issue #20: no
    message a subscriber does not need), and the redelivery sweep expects only those in its
    inbox. Its handler still takes any event of the type it is sent (an older publisher's during
    a rolling upgrade, a replay's) and does nothing with the ignored ones, as before."""

    field: str
    ignored: frozenset[str]

    def wants(self, data: Any) -> bool:
        """False only for data (a dict) whose field holds an ignored value: anything else, data
        not even a dict included, is sent (the subscriber's contract then parks it)."""
        value = data.get(self.field) if isinstance(data, dict) else None
        return not (isinstance(value, str) and value in self.ignored)


# The statuses notifications writes no mail for (the confirmation said what comes next); it
# writes when an order ships or is cancelled (workers.notifications.handlers.tell_status).
UNMAILED_STATUSES = frozenset({"PLACED", "PAYMENT_PENDING", "PAID"})

# Keyed by task; each reads the current version of a type its task subscribes to.
INTERESTS: dict[str, Interest] = {
    "notifications.on_order_status_changed": Interest("status", UNMAILED_STATUSES),
}


def _interest_fields() -> dict[str, str]:
    """For each current type an Interest narrows, the data field it reads (what the redelivery
    sweep reads in SQL to know who expects an event). Raises ValueError for two Interests on
    one type reading two fields."""
    fields: dict[str, str] = {}
    for type_, tasks in SUBSCRIPTIONS.items():
        for task in tasks:
            if task in INTERESTS:
                field = fields.setdefault(type_, INTERESTS[task].field)
                if field != INTERESTS[task].field:
                    raise ValueError(f"Interests in {type_} read two fields; the sweep reads one")
    return fields


INTEREST_FIELDS = _interest_fields()


def recipients(event: Envelope) -> tuple[str, ...]:
    """The tasks to send ``event`` to: the subscribers of its type (``subscribers_of``) less
    those whose Interest it is not, read in its current version. An event that cannot be
    upcast goes to every subscriber, whose own reading parks it with the reason. Raises
    UnknownEventType as ``subscribers_of``."""
    tasks = subscribers_of(event.type)
    if not any(task in INTERESTS for task in tasks):
        return tasks
    try:
        data = upcast(event).data
    except InvalidEvent:
        return tasks
    return tuple(task for task in tasks if task not in INTERESTS or INTERESTS[task].wants(data))


def subscribers_of(type_: str) -> tuple[str, ...]:
    """The tasks to send an event of this type to, in any version ever published (an old one
    is heard by the subscribers of its current version). Raises UnknownEventType for a type
    nobody subscribes to: a bug, never a silent drop."""
    try:
        return SUBSCRIPTIONS[current_type(type_)]
    except KeyError:
        raise UnknownEventType(f"no subscriber is registered for {type_!r}") from None


def types_heard_by(task_name: str) -> list[str]:
    """Every wire type whose events go to ``task_name``: the current versions it subscribes to
    and every older version upcast to one of them (what a replay must look for)."""
    return [
        type_
        for type_ in (*SUBSCRIPTIONS, *UPCASTERS)
        if task_name in SUBSCRIPTIONS.get(current_type(type_), ())
    ]


def subscribed_tasks(component: str) -> list[str]:
    """The subscriber tasks of one component (those on its queue), in the table's order."""
    names = [task for tasks in SUBSCRIPTIONS.values() for task in tasks]
    return [name for name in dict.fromkeys(names) if queue_of(name) == component]


def queue_of(task_name: str) -> str:
    queue = task_name.split(".", 1)[0]
    if queue not in QUEUES:
        raise ValueError(f"task {task_name!r} does not start with a component queue name")
    return queue
