"""Subscriber tasks: one Celery task class for every subscription in the subscription table.

``register_subscribers`` turns each task name the table gives a component into a ``Subscriber``
task whose handler is the function of that name in the component's handlers module, and refuses
to start when the two disagree. ``Subscriber.run`` is the whole life of one delivery: decode the
envelope, read the data through its contract, claim the inbox and run the handler in one unit of
work, publish what it emitted; then retry a transient fault with backoff, or park anything else
at once (``faults.is_transient``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeVar

from celery import Celery, Task
from celery.exceptions import Reject
from sqlalchemy import Connection

from config.settings import Settings, get_settings
from workers.messaging import deadletters, inbox, tracing
from workers.messaging.broker_dead import is_amqp
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.errors import PermanentError, UnknownEventType
from workers.messaging.faults import is_transient
from workers.messaging.logs import event_logger
from workers.messaging.outbox import Outbox
from workers.messaging.publisher import shown
from workers.messaging.subscriptions import subscribed_tasks, subscribers_of
from workers.messaging.unit_of_work import Handler, apply_once, publish_committed
from workers.messaging.versions import parse

log = logging.getLogger(__name__)

T = TypeVar("T")

# The message header that carries the time of a message's first failure through its retries,
# so its dead letter says when the trouble began (ISO 8601, UTC).
FIRST_FAILED_HEADER = "shoeshop_first_failed_at"

# The longest pause, in seconds, before a delivery whose retry could not be published goes back
# to its queue (Subscriber.retry_or_park).
UNSENT_RETRY_PAUSE_S = 5.0


@dataclass(frozen=True)
class RemoteCall(Generic[T]):
    """A handler that must call a remote service (the payment gateway) before it records what
    the service said: ``call(event)`` runs outside any transaction (slow, remote, idempotent by
    key), then ``record(conn, event, outbox, said)`` runs in the unit of work like any handler.
    The inbox is looked at first, so a redelivered event does not even reach the service."""

    call: Callable[[Envelope], T]
    record: Callable[[Connection, Envelope, Outbox, T], None]

    def recording(self, said: T) -> Handler:
        """The handler that records ``said``, the service's answer."""
        return lambda conn, event, outbox: self.record(conn, event, outbox, said)


def backoff_delay(attempt: int, settings: Settings, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter, in seconds: spreads retries so a recovering service is
    not stampeded. ``attempt`` counts from 0 (the first retry)."""
    ceiling = min(settings.retry_max_delay_s, settings.retry_base_delay_s * 2**attempt)
    return (rng or random).uniform(ceiling / 2, ceiling)


def attempt_of(task: Task) -> int:
    """This delivery's attempt number: 1 for the first, 2 for the first retry, and so on."""
    return int(task.request.retries) + 1


class Subscriber(Task):  # type: ignore[misc]  # celery ships no type hints
    """Base of every subscriber task; each subclass names its component and its handler."""

    component: ClassVar[str]
    handler: ClassVar[Handler | RemoteCall[Any]]
    # A message's arguments are one event body; Celery's own check of them would reject a
    # message with others before run() could park it (and a rejected message is gone).
    typing = False

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Deliver one event body to the handler, once (see the module's docstring)."""
        body: object = args[0] if len(args) == 1 and not kwargs else {"args": args, **kwargs}
        attempts = attempt_of(self)
        try:
            event = self.read(body)
        except PermanentError as exc:
            self.park(body, exc, attempts)
            return
        logger = event_logger(log, event, self.name, attempts)
        # The span of this delivery is the event's own context's child, never that of whoever
        # sent the message (tracing's docstring); this thread's alone (a local and an attached
        # context), so deliveries running at once under the thread pool share none.
        with tracing.processing(event, self.name, attempts):
            try:
                self.apply(event, attempts)
                # Celery's "succeeded" line that follows carries the same ids at INFO (see logs).
                logger.debug("handled %s", event.name)
            except Exception as exc:
                tracing.failed(exc)
                self.retry_or_park(body, exc, attempts, logger)

    def read(self, body: object) -> Envelope:
        """The envelope in its current version, its data validated by the contract. Raises
        InvalidEvent or UnknownEventType (a misrouted message is never read as another)."""
        event = Envelope.from_dict(body)
        if self.name not in subscribers_of(event.type):
            raise UnknownEventType(f"{self.name} does not handle events of type {event.type!r}")
        return parse(event)

    def apply(self, event: Envelope, attempts: int) -> None:
        """Run the handler in the component's unit of work unless the inbox says it already
        ran; publish what it emitted once committed."""
        handler = type(self).handler
        if isinstance(handler, RemoteCall):
            if inbox.seen(engine_for(self.component), event.id, self.name):
                return
            handler = handler.recording(handler.call(event))
        emitted = apply_once(self.component, self.name, event, handler, attempts)
        publish_committed(self.app, self.component, emitted)

    def retry_or_park(
        self, body: object, exc: Exception, attempts: int, logger: logging.LoggerAdapter[Any]
    ) -> None:
        """Retry a transient fault with backoff while retries are left; park anything else."""
        settings = get_settings()
        if not is_transient(exc):
            logger.error("failed, parking at once (not a transient fault): %r", exc)
            self.park(body, exc, attempts)
            return
        if attempts > settings.max_retries:
            logger.error("still failing after %d attempts, parking: %r", attempts, exc)
            self.park(body, exc, attempts)
            return
        delay = backoff_delay(attempts - 1, settings)
        if is_amqp(str(self.app.conf.broker_url)):
            # RabbitMQ's native delayed delivery counts whole seconds and refuses less than one.
            delay = max(delay, 1.0)
        logger.warning("transient failure, retry %d in %.1fs: %r", attempts, delay, exc)
        first = self.first_failed_at() or utcnow()
        headers = {**(self.request.headers or {}), FIRST_FAILED_HEADER: first.isoformat()}
        try:
            # Celery builds a retry's argsrepr anew from the body: the event's short form instead.
            raise self.retry(
                exc=exc,
                countdown=delay,
                max_retries=settings.max_retries + 1,
                headers=headers,
                **shown(body),
            )
        except Reject as unsent:
            # Task.retry raises Reject(requeue=False) when it cannot publish the retry (the
            # broker unreachable from here: a partition): the broker would dead-letter this
            # message although nothing is wrong with it, and a charge the gateway made before
            # its answer was lost would wait for an operator. Give it back to its queue
            # instead, after a pause (so a broker that takes this delivery's rejection but not
            # a publish is not asked again at once; the queue's delivery limit still ends a
            # loop; the pause holds a worker slot, hence its ceiling). The inbox, and the
            # gateway's idempotency key, make the next delivery apply it once.
            pause = min(delay, UNSENT_RETRY_PAUSE_S)
            logger.warning(
                "the retry could not be sent (%r): back to the queue in %.1fs", unsent.reason, pause
            )
            time.sleep(pause)
            raise Reject(unsent.reason, requeue=True) from exc

    def park(self, body: object, exc: BaseException, attempts: int) -> None:
        deadletters.park(
            self.name, body, exc, attempts, first_failed_at=self.first_failed_at(), app=self.app
        )

    def first_failed_at(self) -> datetime | None:
        """When this message first failed, if an earlier attempt did (its retry carries it)."""
        raw = getattr(self.request, FIRST_FAILED_HEADER, None) or (self.request.headers or {}).get(
            FIRST_FAILED_HEADER
        )
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def register_subscribers(app: Celery, component: str, handlers: ModuleType) -> list[Subscriber]:
    """Register a Subscriber task for every task the subscription table gives ``component``,
    its handler the function (or RemoteCall) of the same name in ``handlers``:
    ``orders.on_order_placed`` → ``handlers.on_order_placed``.

    Raises LookupError, so the worker does not start, when the table names a task whose handler
    ``handlers`` lacks, or ``handlers`` has an ``on_…`` handler the table never names.
    """
    names = subscribed_tasks(component)
    missing = [name for name in names if not hasattr(handlers, _short(name))]
    unheard = sorted(
        f"{component}.{attr}"
        for attr in vars(handlers)
        if attr.startswith("on_") and f"{component}.{attr}" not in names
    )
    if missing or unheard:
        raise LookupError(
            f"the subscription table and {handlers.__name__} disagree: "
            f"no handler for {missing or 'none'}; handlers nobody subscribes: {unheard or 'none'}"
        )
    tasks = []
    for name in names:
        attributes = {
            "name": name,
            "component": component,
            "handler": staticmethod(getattr(handlers, _short(name))),
            "__module__": handlers.__name__,
        }
        task_class = type(_short(name), (Subscriber,), attributes)
        tasks.append(app.register_task(task_class()))
    return tasks


def _short(task_name: str) -> str:
    return task_name.split(".", 1)[1]
