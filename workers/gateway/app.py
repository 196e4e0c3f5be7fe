"""The simulator's HTTP API: charges, refunds, the ledger and its public key, with faults."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from workers.gateway import cards
from workers.gateway.keys import load_or_create_keypair, public_pem, unseal
from workers.gateway.ledger import (
    AlreadyRefunded,
    Charge,
    ChargeRequest,
    Decline,
    Ledger,
    Outcome,
    RefundRefused,
    UnknownCharge,
    asks_the_same,
)

log = logging.getLogger(__name__)

_STATE = "shoeshop.gateway"
_CURRENCY = re.compile(r"[A-Z]{3}")
# Long enough for any UUID or prefixed id a client may use, short enough to bound the ledger.
MAX_IDEMPOTENCY_KEY_LENGTH = 255

api = Blueprint("gateway", __name__)


class ApiError(Exception):
    """An answer other than success, turned into `{"error": {"code", "message"}}` at the edge."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Gateway:
    ledger: Ledger
    private_key: rsa.RSAPrivateKey
    fault_rate: float
    latency_ms: int
    random: Random


def create_gateway_app(
    data_dir: Path, *, fault_rate: float = 0.0, latency_ms: int = 0, random: Random | None = None
) -> Flask:
    """The simulator app, keeping its keys and ledger under `data_dir`."""
    if not 0.0 <= fault_rate <= 1.0:
        raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate}")
    if latency_ms < 0:
        raise ValueError(f"latency_ms must not be negative, got {latency_ms}")
    app = Flask(__name__)
    app.extensions[_STATE] = _Gateway(
        ledger=Ledger(data_dir),
        private_key=load_or_create_keypair(data_dir),
        fault_rate=fault_rate,
        latency_ms=latency_ms,
        random=random or Random(),
    )
    app.register_blueprint(api)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    return app


def ledger_of(app: Flask) -> Ledger:
    """The app's ledger (the simulator's fault controls reach it from the server)."""
    return _gateway_of(app).ledger


def close_gateway_app(app: Flask) -> None:
    """Release the ledger's database; the app must not serve requests afterwards."""
    _gateway_of(app).ledger.close()


@api.get("/healthz")
def healthz() -> ResponseReturnValue:
    return {"status": "ok"}


@api.get("/v1/public-key")
def public_key() -> ResponseReturnValue:
    return Response(public_pem(_gateway().private_key), mimetype="text/plain")


@api.get("/v1/charges")
def list_charges() -> ResponseReturnValue:
    found = _gateway().ledger.charges_for(request.args.get("order_id"))
    return [charge.to_json() for charge in found]


@api.post("/v1/charges")
def create_charge() -> ResponseReturnValue:
    _simulate_network()
    key = _idempotency_key()
    body = _json_object()
    charge_request = ChargeRequest(
        idempotency_key=key,
        order_id=_text(body, "order_id"),
        amount_cents=_positive_int(body, "amount_cents"),
        currency=_currency(body),
    )
    source = _text(body, "source")
    ledger = _gateway().ledger
    stored = ledger.find_outcome(charge_request.idempotency_key)
    if stored is not None:
        return _answer(stored, charge_request, created=False)
    outcome, created = _charge(ledger, charge_request, source)
    return _answer(outcome, charge_request, created=created)


@api.post("/v1/refunds")
def create_refund() -> ResponseReturnValue:
    _simulate_network()
    key = _idempotency_key()
    body = _json_object()
    charge_id = _text(body, "charge_id")
    try:
        refund, created = _gateway().ledger.refund(charge_id=charge_id, idempotency_key=key)
    except UnknownCharge:
        raise ApiError(404, "charge_not_found", f"no charge {charge_id}") from None
    except AlreadyRefunded:
        raise ApiError(409, "charge_already_refunded", f"{charge_id} is refunded already") from None
    except RefundRefused as refused:
        message = cards.DECLINE_MESSAGES.get(refused.code, "The refund was refused.")
        raise ApiError(402, refused.code, message) from None
    if refund.charge_id != charge_id:
        raise _key_reuse()
    return refund.to_json(), 201 if created else 200


def _charge(ledger: Ledger, charge_request: ChargeRequest, source: str) -> tuple[Outcome, bool]:
    try:
        card = unseal(_gateway().private_key, source)
    except ValueError as exc:
        raise ApiError(422, "invalid_source", str(exc)) from None
    verdict = cards.judge(
        card.number,
        card.exp_month,
        card.exp_year,
        attempt=ledger.count_attempt(charge_request.idempotency_key),
        today=datetime.now(UTC).date(),
    )
    if isinstance(verdict, cards.TryAgain):
        # Not an outcome: the next attempt with this key is judged afresh.
        raise _unavailable("the card issuer did not answer")
    if isinstance(verdict, cards.Refused):
        outcome, created = ledger.record_decline(charge_request, verdict.code)
    else:
        brand, last4 = cards.brand(card.number), cards.last4(card.number)
        outcome, created = ledger.record_charge(
            charge_request,
            brand=brand,
            last4=last4,
            refund_refusal=cards.refund_refusal(card.number),
        )
    if created:
        # Order and key only: the number never reaches a log, not even its last four.
        log.info(
            "order %s key %s: %s",
            charge_request.order_id,
            charge_request.idempotency_key,
            outcome.code if isinstance(outcome, Decline) else outcome.id,
        )
    return outcome, created


def _answer(
    outcome: Outcome, charge_request: ChargeRequest, *, created: bool
) -> ResponseReturnValue:
    if not asks_the_same(outcome, charge_request):
        raise _key_reuse()
    if isinstance(outcome, Decline):
        raise ApiError(402, outcome.code, cards.DECLINE_MESSAGES.get(outcome.code, "Declined."))
    assert isinstance(outcome, Charge)
    return outcome.to_json(), 201 if created else 200


def _simulate_network() -> None:
    """Latency, then (sometimes) an outage that happens before anything is recorded."""
    gateway = _gateway()
    if gateway.latency_ms:
        time.sleep(gateway.latency_ms / 1000)
    if gateway.random.random() < gateway.fault_rate:
        raise _unavailable("injected fault")


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise ApiError(400, "missing_idempotency_key", "the Idempotency-Key header is required")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        message = f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        raise ApiError(400, "invalid_idempotency_key", message)
    return key


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{name} must be a non-empty string")
    return value


def _positive_int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _invalid(f"{name} must be a positive integer (cents)")
    return value


def _currency(body: dict[str, Any]) -> str:
    value = body.get("currency")
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise _invalid("currency must be three upper-case letters, such as EUR")
    return value


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "temporarily_unavailable", message)


def _key_reuse() -> ApiError:
    message = "this Idempotency-Key was already used for a different request"
    return ApiError(409, "idempotency_key_reuse", message)


def _api_error(error: ApiError) -> ResponseReturnValue:
    return {"error": {"code": error.code, "message": error.message}}, error.status


def _http_error(error: HTTPException) -> ResponseReturnValue:
    # Unknown routes and wrong methods answer in the same JSON shape as everything else.
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_")
    return {"error": {"code": code, "message": error.description or error.name}}, status


def _gateway() -> _Gateway:
    return _gateway_of(current_app)


def _gateway_of(app: Flask) -> _Gateway:
    gateway: _Gateway = app.extensions[_STATE]
    return gateway
