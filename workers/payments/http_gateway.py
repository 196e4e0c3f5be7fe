"""The payment gateway over HTTP: the client the payments worker uses in production."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from workers.messaging.contracts import CODE_PATTERN
from workers.messaging.errors import GatewayUnavailable
from workers.payments.gateway import (
    Charged,
    ChargeResult,
    Declined,
    GatewayRejected,
    RefundRefused,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# What the gateway answers when a refund cannot be made, whatever is tried again: the issuer
# refused it (402), the charge is not its (404) or is refunded already (409).
REFUND_REFUSALS = (402, 404, 409)
# 5 s: well above the gateway's normal latency, well below the broker's visibility timeout.
DEFAULT_TIMEOUT_S = 5.0


# Connections kept to the gateway: one per payments worker thread (the Procfile runs 8).
POOL_SIZE = 8

_CODE = re.compile(CODE_PATTERN)


@dataclass(frozen=True)
class _Answer:
    status_code: int
    body: bytes


class HttpGateway:
    """A PaymentGateway over HTTP; one connection pool per instance, safe to share across threads.

    urllib3 rather than httpx: the payments worker imports it, and httpx (with anyio and
    httpcore) costs 5 MB more per process for the same keep-alive POSTs.
    """

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._base_url = base_url.rstrip("/")
        self._pool = urllib3.PoolManager(
            maxsize=POOL_SIZE,
            timeout=urllib3.Timeout(total=timeout_s),
            # A failed request is the task's to retry, with backoff and the same key.
            retries=False,
        )

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> HttpGateway:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()

    def charge(
        self,
        *,
        idempotency_key: str,
        order_id: str,
        amount_cents: int,
        currency: str,
        source: str,
    ) -> ChargeResult:
        body = {
            "order_id": order_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "source": source,
        }
        response = self._post("/v1/charges", idempotency_key, body)
        if response.status_code == 402:
            return Declined(reason=_error_code(response))
        return Charged(charge_id=_id_of(response))

    def refund(self, *, idempotency_key: str, charge_id: str) -> str:
        response = self._post(
            "/v1/refunds", idempotency_key, {"charge_id": charge_id}, also=REFUND_REFUSALS
        )
        if response.status_code in REFUND_REFUSALS:
            code = _error_code(response)
            message = f"refund of {charge_id} refused: {response.status_code} {code}"
            raise RefundRefused(message, code)
        return _id_of(response)

    def _post(
        self, path: str, idempotency_key: str, body: dict[str, Any], also: tuple[int, ...] = ()
    ) -> _Answer:
        """POST and sort out the failures; what comes back is a 2xx, a 402, or a status in
        ``also`` (answers the caller reads)."""
        try:
            raw = self._pool.request(
                "POST",
                self._base_url + path,
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key},
            )
        except HTTPError as exc:
            # Timeouts included: the request may have landed, and the key makes a retry safe.
            name = type(exc).__name__
            raise GatewayUnavailable(f"POST {path}: gateway unreachable ({name}: {exc})") from exc
        response = _Answer(raw.status, raw.data)
        if response.status_code not in also:
            _raise_for_status(path, response)
        return response


def _raise_for_status(path: str, response: _Answer) -> None:
    status = response.status_code
    if status >= 500 or status == 429:
        raise GatewayUnavailable(f"POST {path}: gateway answered {status} {_error_code(response)}")
    if status == 402 or 200 <= status < 300:
        return
    raise GatewayRejected(f"POST {path}: gateway answered {status} {_describe_error(response)}")


def _id_of(response: _Answer) -> str:
    payload = _json(response)
    charge_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(charge_id, str) or not charge_id:
        raise GatewayRejected(f"gateway answered {response.status_code} without an id")
    return charge_id


def _error_code(response: _Answer) -> str:
    """The gateway's error code when it is one the events can carry (contracts.Code: lower-case
    letters, digits and underscores, at most 50), else ``unknown``: a decline is a decline
    whatever the gateway calls it, and its message is logged with the failure."""
    code = _error_body(response).get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "unknown"


def _describe_error(response: _Answer) -> str:
    # The gateway only ever sees sealed card data, so its messages cannot echo a card number.
    message = _error_body(response).get("message")
    suffix = f": {message}" if isinstance(message, str) and message else ""
    return f"{_error_code(response)}{suffix}"


def _error_body(response: _Answer) -> dict[str, Any]:
    try:
        payload = _json(response)
    except GatewayRejected:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _json(response: _Answer) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        raise GatewayRejected(f"gateway answered {response.status_code} with no JSON") from None
