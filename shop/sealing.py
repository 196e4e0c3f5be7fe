"""Sealing card details for the payment gateway: only the gateway's private key can open them."""

from __future__ import annotations

import base64
import json
import threading

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from shop.validation import Card


class PaymentProviderUnavailable(Exception):
    """The gateway's public key could not be fetched, so no card can be accepted right now."""


class Sealer:
    """Fetches the gateway's public key once and seals each card with RSA-OAEP (SHA-256)."""

    def __init__(self, gateway_url: str, timeout_s: float = 5.0) -> None:
        self._url = f"{gateway_url}/v1/public-key"
        self._timeout_s = timeout_s
        self._key: rsa.RSAPublicKey | None = None
        self._lock = threading.Lock()

    def seal(self, card: Card) -> str:
        plain = json.dumps(
            {
                "number": card.number,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "cvc": card.cvc,
            }
        ).encode()
        sealed = self._public_key().encrypt(
            plain,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            ),
        )
        return base64.urlsafe_b64encode(sealed).decode()

    def _public_key(self) -> rsa.RSAPublicKey:
        with self._lock:
            if self._key is None:
                self._key = self._fetch()
            return self._key

    def _fetch(self) -> rsa.RSAPublicKey:
        try:
            response = httpx.get(self._url, timeout=self._timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise PaymentProviderUnavailable(
                f"cannot fetch the gateway's public key: {exc}"
            ) from None
        key = serialization.load_pem_public_key(response.content)
        if not isinstance(key, rsa.RSAPublicKey):
            raise PaymentProviderUnavailable("the gateway's public key is not an RSA key")
        return key
