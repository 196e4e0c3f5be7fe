"""Reading any version of an event ever published as its current version: upcast, then validate.

Events are immutable facts: an outbox or the event store keeps each one as it was written, in
the version it was written in. A consumer reads it through this module, which converts the old
version's data step by step (v1 → v2 → … → current) and then checks it against the current
version's model, so a handler only ever sees the current shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from workers.messaging.contracts import MODELS
from workers.messaging.envelope import Envelope
from workers.messaging.errors import InvalidEvent, UnknownEventType

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]
"""Turns the data of one version of an event into the data of the next version."""

UPCASTERS: dict[str, Upcaster] = {}
"""Old wire type (``shoeshop.<name>.vN``) → the upcaster to ``vN+1``. Empty while every event
is at v1; a breaking change adds the new version's model and the upcaster from the old one."""


def next_version(type_: str) -> str:
    """The same event one version on: ``shoeshop.order.placed.v1`` → ``…placed.v2``."""
    name, _, version = type_.rpartition(".v")
    return f"{name}.v{int(version) + 1}"


def current_type(type_: str, upcasters: Mapping[str, Upcaster] = UPCASTERS) -> str:
    """The wire type an event of ``type_`` is read as; a current or unknown type is itself."""
    while type_ in upcasters:
        type_ = next_version(type_)
    return type_


def upcast(event: Envelope, upcasters: Mapping[str, Upcaster] = UPCASTERS) -> Envelope:
    """The event in its current version (its id, subject and time unchanged); data unchecked.

    Raises InvalidEvent when an upcaster cannot read the old data: an upcaster is a pure
    function of the data, so no retry would change its answer.
    """
    type_, data = event.type, event.data
    while (step := upcasters.get(type_)) is not None:
        try:
            data = step(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEvent(f"{type_} data cannot be upcast: {exc!r}") from exc
        type_ = next_version(type_)
    return dataclasses.replace(event, type=type_, data=data)


def parse(
    event: Envelope,
    models: Mapping[str, type[BaseModel]] = MODELS,
    upcasters: Mapping[str, Upcaster] = UPCASTERS,
) -> Envelope:
    """The event upcast to its current version, its data validated by that version's model and
    given back as plain JSON (a dict shaped exactly like the model; unknown fields dropped).

    Raises UnknownEventType when no model reads the type, InvalidEvent naming every field path
    that breaks the model and why.
    """
    current = upcast(event, upcasters)
    model = models.get(current.type)
    if model is None:
        raise UnknownEventType(f"no contract reads events of type {event.type!r}")
    try:
        valid = model.model_validate(current.data)
    except ValidationError as exc:
        # from None: pydantic's own message quotes the values, and a dead letter keeps the
        # traceback; describe() names the fields without them.
        raise InvalidEvent(f"{current.type} data is invalid: {describe(exc)}") from None
    return dataclasses.replace(current, data=valid.model_dump(mode="json"))


def describe(error: ValidationError) -> str:
    """Each failure as ``path: what is wrong`` (e.g. ``items[0].quantity: Input should be
    greater than or equal to 1``), without the values: a body may carry a sealed card."""
    return "; ".join(f"{_path(item['loc'])}: {item['msg']}" for item in error.errors())


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "data"
