"""The payments component's view of the payment gateway: what it asks and what comes back.

The HTTP client is in `http_gateway`, imported only where a gateway is built, so that workers
which only load the payments tasks (every worker shares one Celery app) load no HTTP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeAlias

from workers.messaging.errors import PermanentError


class GatewayRejected(PermanentError):
    """The gateway refused the request itself (a 4xx other than a decline), or answered
    something this client cannot read: sending the same request again cannot help."""


class RefundRefused(GatewayRejected):
    """The gateway said no to a refund for good: the card cannot take money back, the charge is
    unknown to it or refunded already. ``code`` is its reason (a ``contracts.Code``, else
    ``unknown``); the order needs an operator (payment.refund_failed), not a dead letter."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Charged:
    """The money was taken; `charge_id` is the gateway's id, needed for a refund."""

    charge_id: str


@dataclass(frozen=True)
class Declined:
    """The card was declined; `reason` is the gateway's code, such as `insufficient_funds`."""

    reason: str


ChargeResult: TypeAlias = Charged | Declined


@dataclass(frozen=True)
class Refunded:
    """The money went back; `refund_id` is the gateway's id of the refund."""

    refund_id: str


@dataclass(frozen=True)
class NotRefunded:
    """The gateway refused the refund for good; `reason` is its code (RefundRefused.code)."""

    reason: str


RefundResult: TypeAlias = Refunded | NotRefunded


class PaymentGateway(Protocol):
    """What the payments component needs from a payment service provider."""

    def charge(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        amount_cents: int,
        currency: str,
        source: str,
    ) -> ChargeResult: ...

    def refund(self, *, idempotency_key: str, charge_id: str) -> str:
        """The gateway's refund id; raises RefundRefused when it refuses for good."""
        ...
