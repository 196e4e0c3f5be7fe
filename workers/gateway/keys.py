"""The simulator's RSA keypair on disk, and the opening of card data sealed with its public key."""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PRIVATE_FILE = "private.pem"
PUBLIC_FILE = "public.pem"
KEY_BITS = 2048
# 65537 is the exponent every RSA implementation expects; anything else is slower or refused.
PUBLIC_EXPONENT = 65537

_OAEP = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


@dataclass(frozen=True)
class SealedCard:
    """The card data a token carries, once opened; repr hides the number and the CVC."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


def load_or_create_keypair(directory: Path) -> rsa.RSAPrivateKey:
    """The keypair kept in `directory`, generated on first use; safe when processes race."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / PRIVATE_FILE
    if not private_path.exists():
        _publish_once(private_path, _private_pem(_generate()))
    # Re-read rather than trust what we generated: a racing process may have published first.
    private_key = _read_private_key(private_path)
    _write_public(directory / PUBLIC_FILE, public_pem(private_key))
    return private_key


def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    """The public half as a PEM SubjectPublicKeyInfo, what a client seals card data with."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def unseal(private_key: rsa.RSAPrivateKey, token: str) -> SealedCard:
    """Open a source token (urlsafe base64 of RSA-OAEP-SHA256 over the card's JSON)."""
    ciphertext = _decode_token(token)
    try:
        plaintext = private_key.decrypt(ciphertext, _OAEP)
    except ValueError:
        raise ValueError("source was not sealed with this gateway's public key") from None
    return _parse_card(plaintext)


def _generate() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS)


def _private_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def _publish_once(path: Path, content: bytes) -> None:
    """Create `path` with `content` (mode 0600) unless it exists, never half-written."""
    temp = _write_temp(path.parent, content)
    try:
        # A hard link fails if the name is taken, so the first process to get here wins and
        # every other one then reads the same key (os.replace would let the last one win).
        os.link(temp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)


def _write_public(path: Path, pem: str) -> None:
    content = pem.encode("ascii")
    if path.exists() and path.read_bytes() == content:
        return
    temp = _write_temp(path.parent, content)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def _write_temp(directory: Path, content: bytes) -> str:
    # mkstemp creates the file 0600, so the private key is never readable by others, even briefly.
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".key-", suffix=".tmp")
    with os.fdopen(fd, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    return temp


def _decode_token(token: str) -> bytes:
    if not isinstance(token, str) or not token:
        raise ValueError("source must be a non-empty string")
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError("source is not urlsafe base64") from None


def _parse_card(plaintext: bytes) -> SealedCard:
    try:
        data: Any = json.loads(plaintext)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # `from None`: the decode error keeps the plaintext, which holds the card number.
        raise ValueError("sealed source is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise ValueError("sealed source must be a JSON object")
    return SealedCard(
        number=_digits(data, "number", 12, 19),
        exp_month=_int_between(data, "exp_month", 1, 12),
        exp_year=_int_between(data, "exp_year", 2000, 9999),
        cvc=_digits(data, "cvc", 3, 4),
    )


def _digits(data: dict[str, Any], name: str, shortest: int, longest: int) -> str:
    # Messages name the field and the rule, never the value: the value may be a card number.
    value = data.get(name)
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise ValueError(f"sealed source: {name} must be a string of digits")
    if not shortest <= len(value) <= longest:
        raise ValueError(f"sealed source: {name} must have {shortest} to {longest} digits")
    return value


def _int_between(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"sealed source: {name} must be an integer from {low} to {high}")
    return value
