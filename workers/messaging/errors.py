"""The errors of the messaging kit: which ones retry and which ones park a message at once."""

from __future__ import annotations


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
