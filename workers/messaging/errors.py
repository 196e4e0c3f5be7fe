"""The errors of the messaging kit: which ones retry and which ones park a message at once."""

from __future__ import annotations

import msgspec


class ShoeshopError(Exception):
    """Base of every error the project raises on purpose."""


class TransientError(ShoeshopError):
    """A fault that may pass by itself (a service unreachable, a timeout): retried with backoff."""


class PermanentError(ShoeshopError):
    """A fault that no retry can fix: the message goes straight to the dead letters."""


class InvalidEvent(PermanentError):
    """The message is not a valid event envelope, or its data breaks the event's schema."""


class UnknownEventType(PermanentError):
    """The event's type is not one this subscriber knows how to handle."""


class InvariantViolation(PermanentError):
    """Applying the event would break a rule of the domain; this is a bug or corrupt data."""


class GatewayUnavailable(TransientError):
    """The payment gateway did not answer, timed out, or answered with a 5xx."""


_MISSING = "Object missing required field `"
# The messages of msgspec's that quote the value refused ("Invalid enum value 'Z'", "Invalid
# value 5") are cut after these words.
_QUOTES_VALUE = ("Invalid enum value", "Invalid value")


def describe(error: msgspec.ValidationError) -> str:
    """The failure as ``path: what is wrong`` (e.g. ``items[0].quantity: Expected `int` >= 1``,
    ``payment.token: Object missing required field``), without the value: a body may carry a
    sealed card."""
    # msgspec ends its message with where the failure is, "$" being the data itself:
    # "… - at `$.items[0].quantity`", or "… - at `key` in `$.x`" when a key of a mapping failed;
    # no suffix when it is the data itself.
    what, at, where = str(error).rpartition(" - at ")
    if not at:
        what, where = where, "`$`"
    if where.startswith("`key` in "):
        what, where = f"{what} (a key)", where.removeprefix("`key` in ")
    path = where.strip("`").removeprefix("$")
    if what.startswith(_MISSING):
        path += "." + what.removeprefix(_MISSING).rstrip("`")
        what = _MISSING.rstrip(" `")
    for words in _QUOTES_VALUE:
        if what.startswith(words):
            what = words
            break
    return f"{path.removeprefix('.') or 'data'}: {what}"
