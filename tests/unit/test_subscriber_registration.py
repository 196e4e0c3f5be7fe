"""Subscriptions are written once, in the subscription table: every subscriber task is
registered from it on one task class, and a worker refuses to start when the table and a
component's handlers disagree (issue #12)."""

from __future__ import annotations

import types
from typing import Any

import pytest
from celery import Celery

import config.celery
from shop import handlers as shop_handlers
from workers.messaging.consumer import RemoteCall, Subscriber, register_subscribers
from workers.messaging.subscriptions import SUBSCRIPTIONS, subscribed_tasks
from workers.orders import handlers as orders_handlers
from workers.payments import handlers as payments_handlers
from workers.shipping import handlers as shipping_handlers

HANDLERS = {
    "shop": shop_handlers,
    "orders": orders_handlers,
    "payments": payments_handlers,
    "shipping": shipping_handlers,
}


def handlers_like(module: types.ModuleType, **changes: Any) -> types.ModuleType:
    """A copy of a handlers module with some names added (a value) or removed (None)."""
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update({k: v for k, v in vars(module).items() if k.startswith("on_")})
    for name, value in changes.items():
        if value is None:
            delattr(copy, name)
        else:
            setattr(copy, name, value)
    return copy


def test_every_task_the_table_names_is_a_subscriber_of_the_shared_app_and_nothing_else_is() -> None:
    app = config.celery.app
    app.loader.import_default_modules()
    subscribers = {name for name, task in app.tasks.items() if isinstance(task, Subscriber)}
    assert subscribers == {task for tasks in SUBSCRIPTIONS.values() for task in tasks}


@pytest.mark.parametrize("component", sorted(HANDLERS))
def test_each_subscriber_runs_the_handler_of_its_name(component: str) -> None:
    app = Celery("registration-test", set_as_current=False)
    tasks = register_subscribers(app, component, HANDLERS[component])
    assert [task.name for task in tasks] == subscribed_tasks(component)
    for task in tasks:
        handler = type(task).handler
        assert handler is getattr(HANDLERS[component], task.name.split(".", 1)[1])
        assert callable(handler) or isinstance(handler, RemoteCall)


def test_a_worker_does_not_start_when_the_table_names_a_handler_that_is_not_there() -> None:
    app = Celery("registration-test", set_as_current=False)
    without = handlers_like(shipping_handlers, on_shipment_cancellation_requested=None)
    with pytest.raises(LookupError, match=r"no handler for \['shipping\.on_shipment_canc"):
        register_subscribers(app, "shipping", without)


def test_a_worker_does_not_start_with_a_handler_nobody_subscribes() -> None:
    app = Celery("registration-test", set_as_current=False)
    extra = handlers_like(orders_handlers, on_parcel_lost=lambda *_: None)
    with pytest.raises(LookupError, match=r"nobody subscribes: \['orders\.on_parcel_lost'\]"):
        register_subscribers(app, "orders", extra)
