"""The payment gateway over HTTP: the client the payments worker uses in production."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from workers.messaging.errors import GatewayUnavailable
from workers.payments.gateway import Charged, ChargeResult, Declined, GatewayRejected

IDEMPOTENCY_HEADER = "Idempotency-Key"
# 5 s: well above the gateway's normal latency, well below the broker's visibility timeout.
DEFAULT_TIMEOUT_S = 5.0


class HttpGateway:
    """A PaymentGateway over HTTP; one pooled client per instance, safe to share across threads."""

    def __init__(self, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        # A TLS context (~3 MB: the CA bundle) is built only when the gateway speaks HTTPS.
        tls = httpx.URL(base_url).scheme == "https"
        self._client = httpx.Client(base_url=base_url, timeout=timeout_s, verify=tls)

    def close(self) -> None:
        self._client.close()

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
        response = self._post("/v1/refunds", idempotency_key, {"charge_id": charge_id})
        if response.status_code == 402:
            raise GatewayRejected(f"refund of {charge_id} refused: {_error_code(response)}")
        return _id_of(response)

    def _post(self, path: str, idempotency_key: str, body: dict[str, Any]) -> httpx.Response:
        """POST and sort out the failures; what comes back is a 2xx or a 402."""
        try:
            response = self._client.post(
                path, json=body, headers={IDEMPOTENCY_HEADER: idempotency_key}
            )
        except httpx.TransportError as exc:
            # Timeouts included: the request may have landed, and the key makes a retry safe.
            name = type(exc).__name__
            raise GatewayUnavailable(f"POST {path}: gateway unreachable ({name}: {exc})") from exc
        _raise_for_status(path, response)
        return response


def _raise_for_status(path: str, response: httpx.Response) -> None:
    status = response.status_code
    if status >= 500 or status == 429:
        raise GatewayUnavailable(f"POST {path}: gateway answered {status} {_error_code(response)}")
    if status == 402 or 200 <= status < 300:
        return
    raise GatewayRejected(f"POST {path}: gateway answered {status} {_describe_error(response)}")


def _id_of(response: httpx.Response) -> str:
    payload = _json(response)
    charge_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(charge_id, str) or not charge_id:
        raise GatewayRejected(f"gateway answered {response.status_code} without an id")
    return charge_id


def _error_code(response: httpx.Response) -> str:
    error = _error_body(response)
    code = error.get("code")
    return code if isinstance(code, str) and code else "unknown"


def _describe_error(response: httpx.Response) -> str:
    # The gateway only ever sees sealed card data, so its messages cannot echo a card number.
    message = _error_body(response).get("message")
    suffix = f": {message}" if isinstance(message, str) and message else ""
    return f"{_error_code(response)}{suffix}"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = _json(response)
    except GatewayRejected:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GatewayRejected(f"gateway answered {response.status_code} with no JSON") from None
