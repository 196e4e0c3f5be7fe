"""The payment-gateway simulator driven over real HTTP through the payments component's client."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.integration import sqlite_file_bytes
from workers.gateway import cards
from workers.gateway.server import RunningGateway, start_in_thread
from workers.messaging.errors import GatewayUnavailable
from workers.payments.gateway import Charged, Declined, GatewayRejected, RefundRefused
from workers.payments.http_gateway import HttpGateway

Seal = Callable[..., str]

FUTURE_YEAR = date.today().year + 5


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    with start_in_thread(tmp_path) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[HttpGateway]:
    with HttpGateway(gateway.url) as http_gateway:
        yield http_gateway


@pytest.fixture
def seal(gateway: RunningGateway) -> Seal:
    return sealer_for(gateway.url)


def sealer_for(url: str) -> Seal:
    """Seal card data the way the shop does: RSA-OAEP-SHA256 with the gateway's public key."""
    response = httpx.get(f"{url}/v1/public-key")
    response.raise_for_status()
    public_key = serialization.load_pem_public_key(response.content)
    assert isinstance(public_key, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

    def seal(number: str, exp_month: int = 12, exp_year: int = FUTURE_YEAR) -> str:
        card = {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": "123"}
        ciphertext = public_key.encrypt(json.dumps(card).encode(), oaep)
        return base64.urlsafe_b64encode(ciphertext).decode("ascii")

    return seal


def ledger_charges(gateway: RunningGateway, order_id: str | None = None) -> list[dict[str, Any]]:
    params = {} if order_id is None else {"order_id": order_id}
    response = httpx.get(f"{gateway.url}/v1/charges", params=params)
    response.raise_for_status()
    charges: list[dict[str, Any]] = response.json()
    return charges


def charge(
    client: HttpGateway, source: str, *, key: str, order_id: str, amount: int = 5_000
) -> Any:
    return client.charge(
        idempotency_key=key, order_id=order_id, amount_cents=amount, currency="EUR", source=source
    )


def new_id() -> str:
    return str(uuid.uuid4())


def test_same_idempotency_key_charges_once(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    key, order_id = new_id(), new_id()

    first = charge(client, seal(cards.ALWAYS_SUCCEEDS), key=key, order_id=order_id)
    second = charge(client, seal(cards.ALWAYS_SUCCEEDS), key=key, order_id=order_id)

    assert isinstance(first, Charged)
    assert second == first
    [stored] = ledger_charges(gateway, order_id)
    assert stored["id"] == first.charge_id
    assert stored["status"] == "succeeded"
    assert (stored["brand"], stored["last4"]) == ("visa", "4242")


def test_first_success_answers_201_and_its_replay_200_with_the_same_body(
    gateway: RunningGateway, seal: Seal
) -> None:
    body = {"order_id": new_id(), "amount_cents": 1_999, "currency": "EUR"}
    headers = {"Idempotency-Key": new_id()}

    with httpx.Client(base_url=gateway.url) as http:
        first = http.post(
            "/v1/charges", json={**body, "source": seal("4242424242424242")}, headers=headers
        )
        replay = http.post(
            "/v1/charges", json={**body, "source": seal("4242424242424242")}, headers=headers
        )

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert set(first.json()) == {
        "id",
        "order_id",
        "amount_cents",
        "currency",
        "status",
        "idempotency_key",
        "created",
        "brand",
        "last4",
    }


def test_declined_card_is_declined_again_for_the_same_key_without_a_charge(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    key, order_id = new_id(), new_id()

    first = charge(client, seal(cards.DECLINED), key=key, order_id=order_id)
    again = charge(client, seal(cards.DECLINED), key=key, order_id=order_id)

    assert first == again == Declined(reason="card_declined")
    assert ledger_charges(gateway, order_id) == []


def test_insufficient_funds_card_is_declined_with_that_reason(
    client: HttpGateway, seal: Seal
) -> None:
    result = charge(client, seal(cards.INSUFFICIENT_FUNDS), key=new_id(), order_id=new_id())

    assert result == Declined(reason="insufficient_funds")


def test_expired_card_is_declined_as_expired(client: HttpGateway, seal: Seal) -> None:
    source = seal(cards.ALWAYS_SUCCEEDS, exp_month=1, exp_year=2020)

    result = charge(client, source, key=new_id(), order_id=new_id())

    assert result == Declined(reason="expired_card")


def test_flaky_card_is_unavailable_twice_then_charged_once(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    key, order_id, source = new_id(), new_id(), seal(cards.FLAKY)

    for _ in range(2):
        with pytest.raises(GatewayUnavailable):
            charge(client, source, key=key, order_id=order_id)
    result = charge(client, source, key=key, order_id=order_id)

    assert isinstance(result, Charged)
    assert [c["id"] for c in ledger_charges(gateway, order_id)] == [result.charge_id]


def test_always_unavailable_card_never_succeeds(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    key, order_id, source = new_id(), new_id(), seal(cards.ALWAYS_UNAVAILABLE)

    for _ in range(5):
        with pytest.raises(GatewayUnavailable):
            charge(client, source, key=key, order_id=order_id)

    assert ledger_charges(gateway, order_id) == []


def test_full_fault_rate_makes_the_gateway_unavailable_and_records_nothing(tmp_path: Path) -> None:
    with start_in_thread(tmp_path, fault_rate=1.0) as faulty, HttpGateway(faulty.url) as client:
        source = sealer_for(faulty.url)(cards.ALWAYS_SUCCEEDS)

        with pytest.raises(GatewayUnavailable, match="503"):
            charge(client, source, key=new_id(), order_id=new_id())

        assert ledger_charges(faulty) == []
    assert _row_counts(tmp_path / "ledger.db") == {
        "charges": 0,
        "outcomes": 0,
        "attempts": 0,
        "refunds": 0,
    }


def test_unreachable_gateway_is_unavailable(seal: Seal) -> None:
    source = seal(cards.ALWAYS_SUCCEEDS)
    with (
        HttpGateway(f"http://127.0.0.1:{_closed_port()}", timeout_s=2.0) as client,
        pytest.raises(GatewayUnavailable, match="unreachable"),
    ):
        charge(client, source, key=new_id(), order_id=new_id())


def test_refund_marks_the_charge_refunded_and_is_idempotent(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    order_id, refund_key = new_id(), new_id()
    charged = charge(client, seal(cards.ALWAYS_SUCCEEDS), key=new_id(), order_id=order_id)
    assert isinstance(charged, Charged)

    first = client.refund(idempotency_key=refund_key, charge_id=charged.charge_id)
    again = client.refund(idempotency_key=refund_key, charge_id=charged.charge_id)

    assert first == again
    assert first.startswith("re_")
    [stored] = ledger_charges(gateway, order_id)
    assert stored["status"] == "refunded"


def test_refund_of_an_unknown_charge_is_refused_for_good(client: HttpGateway) -> None:
    with pytest.raises(RefundRefused, match="404 charge_not_found") as refused:
        client.refund(idempotency_key=new_id(), charge_id="ch_nope")
    assert refused.value.code == "charge_not_found"


def test_a_second_refund_of_a_charge_is_refused_for_good(client: HttpGateway, seal: Seal) -> None:
    charged = charge(client, seal(cards.ALWAYS_SUCCEEDS), key=new_id(), order_id=new_id())
    assert isinstance(charged, Charged)
    client.refund(idempotency_key=new_id(), charge_id=charged.charge_id)
    with pytest.raises(RefundRefused, match="409 charge_already_refunded"):
        client.refund(idempotency_key=new_id(), charge_id=charged.charge_id)


def test_the_refund_refused_card_is_charged_but_never_refunded_until_allowed(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    order_id, key = new_id(), new_id()
    charged = charge(client, seal(cards.REFUND_REFUSED), key=new_id(), order_id=order_id)
    assert isinstance(charged, Charged)
    for _ in range(2):  # the same key, or another: refused the same way, nothing recorded
        with pytest.raises(RefundRefused, match="402 expired_or_canceled_card") as refused:
            client.refund(idempotency_key=key, charge_id=charged.charge_id)
        assert refused.value.code == cards.REFUND_REFUSAL_CODE
    [stored] = ledger_charges(gateway, order_id)
    assert stored["status"] == "succeeded"

    gateway.allow_refunds(charged.charge_id)
    assert client.refund(idempotency_key=key, charge_id=charged.charge_id).startswith("re_")
    [stored] = ledger_charges(gateway, order_id)
    assert stored["status"] == "refunded"


def test_reusing_a_key_for_another_amount_is_rejected(client: HttpGateway, seal: Seal) -> None:
    key, order_id, source = new_id(), new_id(), seal(cards.ALWAYS_SUCCEEDS)
    charge(client, source, key=key, order_id=order_id, amount=5_000)

    with pytest.raises(GatewayRejected, match="409 idempotency_key_reuse"):
        charge(client, source, key=key, order_id=order_id, amount=6_000)


def test_unreadable_source_is_rejected(client: HttpGateway) -> None:
    with pytest.raises(GatewayRejected, match="422 invalid_source"):
        charge(client, "bm90LXNlYWxlZA==", key=new_id(), order_id=new_id())


def test_missing_idempotency_key_is_a_bad_request(gateway: RunningGateway, seal: Seal) -> None:
    body = {
        "order_id": new_id(),
        "amount_cents": 100,
        "currency": "EUR",
        "source": seal("4242424242424242"),
    }

    response = httpx.post(f"{gateway.url}/v1/charges", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_idempotency_key"


def test_invalid_field_is_named_in_the_answer(gateway: RunningGateway) -> None:
    body = {"order_id": new_id(), "amount_cents": -5, "currency": "EUR", "source": "x"}

    response = httpx.post(f"{gateway.url}/v1/charges", json=body, headers={"Idempotency-Key": "k"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "amount_cents" in response.json()["error"]["message"]


def test_concurrent_requests_with_one_key_charge_once(
    gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    key, order_id, source = new_id(), new_id(), seal(cards.ALWAYS_SUCCEEDS)
    start = threading.Barrier(8)

    def attempt(_: int) -> Any:
        start.wait()
        return charge(client, source, key=key, order_id=order_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(8)))

    assert len(set(results)) == 1
    assert isinstance(results[0], Charged)
    assert len(ledger_charges(gateway, order_id)) == 1


def test_ledger_file_holds_no_card_number(
    tmp_path: Path, gateway: RunningGateway, client: HttpGateway, seal: Seal
) -> None:
    charge(client, seal(cards.ALWAYS_SUCCEEDS), key=new_id(), order_id=new_id())
    charge(client, seal(cards.DECLINED), key=new_id(), order_id=new_id())

    files = [tmp_path / "ledger.db", tmp_path / "ledger.db-wal"]
    raw = sqlite_file_bytes(files)

    assert b"4242" in raw  # the last four are kept, so this check does read the data
    assert cards.ALWAYS_SUCCEEDS.encode() not in raw
    assert cards.DECLINED.encode() not in raw


def test_keypair_survives_a_restart_and_the_private_key_is_private(tmp_path: Path) -> None:
    with start_in_thread(tmp_path) as first:
        before = httpx.get(f"{first.url}/v1/public-key").text
    with start_in_thread(tmp_path) as second:
        after = httpx.get(f"{second.url}/v1/public-key").text

    assert before == after
    assert before.startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE((tmp_path / "private.pem").stat().st_mode) == 0o600


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _closed_port()
    script = (
        "import logging, sys; from pathlib import Path; from workers.gateway.server import serve; "
        "logging.basicConfig(level=logging.INFO); serve(int(sys.argv[1]), Path(sys.argv[2]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(port), str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert process.stderr is not None
        started = process.stderr.readline()
        healthy = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()

    assert f"http://127.0.0.1:{port}" in started
    assert healthy == {"status": "ok"}
    assert process.returncode == 0
    assert "Traceback" not in rest


def _closed_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _row_counts(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as conn:
        tables = ("charges", "outcomes", "attempts", "refunds")
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables
        }


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("do_not_honor", "do_not_honor"),
        ("Card Declined!", "unknown"),
        ("declined\x00", "unknown"),
        ("x" * 51, "unknown"),
        (402, "unknown"),
    ],
)
def test_a_decline_code_the_events_cannot_carry_is_read_as_unknown(code: Any, reason: str) -> None:
    # A gateway (a fake one here: the simulator only answers codes it knows) that declines with
    # a code no reason column or event could hold: the decline is still a decline.
    class Declining(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"error": {"code": code, "message": "no"}}).encode()
            self.send_response(402)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Declining)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with HttpGateway(f"http://127.0.0.1:{server.server_port}") as declining:
            result = charge(declining, "sealed", key=new_id(), order_id=new_id())
    finally:
        server.shutdown()
        server.server_close()
    assert result == Declined(reason=reason)
