"""Reading any version of an event ever published as its current version: upcast, then validate.

Events are immutable facts: an outbox or the event store keeps each one as it was written, in
the version it was written in. A consumer reads it through this module, which converts the old
version's data step by step (v1 → v2 → … → current) and then checks it against the current
version's model, so a handler only ever sees the current shape.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from workers.messaging.contracts import MODELS, UNCARRIABLE
from workers.messaging.envelope import Envelope, event_name, event_type
from workers.messaging.errors import InvalidEvent, UnknownEventType, describe

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]
"""Turns the data of one version of an event into the data of the next version."""

_UNCARRIABLE = re.compile(f"[{UNCARRIABLE}]")


def carriable_text(data: Data) -> Data:
    """v1 → v2, for every event: v2 bounds every string to what every component can carry
    (contracts). Release 0.1.0's shop let a tab or a line break into a customer's name or
    address, and any control character but whitespace into an email address, which its v1
    events carried on. Here each control character becomes a space, or nothing in an email
    address (which cannot hold a space, and which 0.1.0 refused with one), and a lone surrogate
    becomes U+FFFD, the replacement character. Nothing else changes: a v1 value that breaks
    another v2 limit could not have been written by 0.1.0's producers, and is refused as the
    current model refuses it."""

    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            if key == "email":
                return _UNCARRIABLE.sub("", value)
            return _UNCARRIABLE.sub(_replacement, value)
        if isinstance(value, dict):
            return {name: clean(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    cleaned: Data = clean(data)
    return cleaned


def _replacement(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else " "


UPCASTERS: dict[str, Upcaster] = {
    event_type(event_name(type_), 1): carriable_text
    for type_ in MODELS
    if type_ != event_type(event_name(type_), 1)  # an event first defined at v2 or later
}
"""Old wire type (``shoeshop.<name>.vN``) → the upcaster to ``vN+1``. A breaking change adds the
new version's model and the upcaster from the old one; the old version's schema stays in
docs/events/ as it was."""


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
    models: Mapping[str, type[msgspec.Struct]] = MODELS,
    upcasters: Mapping[str, Upcaster] = UPCASTERS,
) -> Envelope:
    """The event upcast to its current version, its data validated by that version's model and
    given back as plain JSON (a dict shaped exactly like the model; unknown fields dropped).

    Raises UnknownEventType when no model reads the type, InvalidEvent naming the field path
    that breaks the model and why. msgspec stops at the first field that breaks it: only that one
    is named (the message is parked whole, so the others show when it is looked at).
    """
    current = upcast(event, upcasters)
    model = models.get(current.type)
    if model is None:
        raise UnknownEventType(f"no contract reads events of type {event.type!r}")
    try:
        valid = msgspec.convert(current.data, type=model, strict=True)
    except msgspec.ValidationError as exc:
        # from None: a message of msgspec's may quote the value, and a dead letter keeps the
        # traceback; describe() names the field without it.
        raise InvalidEvent(f"{current.type} data is invalid: {describe(exc)}") from None
    data: Data = msgspec.to_builtins(valid)
    return dataclasses.replace(current, data=data)
