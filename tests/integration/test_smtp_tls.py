"""The mail client against SMTP servers that offer STARTTLS and ask for a login, and one that does
not offer it (issue #16): aiosmtpd serving a certificate made here, which the client trusts
through SSL_CERT_FILE (the standard library's default context reads it)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port
from workers.notifications import smtp

USER, PASSWORD = "shop", "s3cret"


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Inbox:
    """Keeps what the server was sent, and whether it came over TLS after a login."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            {
                "tls": session.ssl is not None,
                "login": session.authenticated,
                "to": envelope.rcpt_tos,
            }
        )
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    cert, key = certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "orders@shop.example"
    mail["To"] = "ada@example.com"
    mail["Subject"] = "Hello"
    mail.set_content("Hello")
    return mail


def test_a_server_that_offers_starttls_gets_the_mail_encrypted_after_the_login(
    tls_server: tuple[Inbox, int],
) -> None:
    inbox, port = tls_server

    smtp.send(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}", message())

    assert inbox.received == [{"tls": True, "login": True, "to": ["ada@example.com"]}]


def test_a_password_is_never_sent_to_a_server_without_starttls(tmp_path: Path) -> None:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        with pytest.raises(smtp.MailServerUnavailable, match="not sent in clear") as refused:
            smtp.send(f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}", message())
    finally:
        controller.stop()
    assert PASSWORD not in str(refused.value)
    assert inbox.received == []


class RefusesEveryone:
    """An SMTP handler that refuses each recipient, echoing the address as servers do."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected"


def test_a_refused_recipient_is_not_named_in_the_error_that_reaches_logs_and_dead_letters() -> None:
    # The error's text goes to the logs and the dead letters; an erasure reaches neither's copy.
    port = free_port()
    controller = Controller(
        RefusesEveryone(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True
    )
    controller.start()
    message = EmailMessage()
    message["From"], message["To"] = "shop@example.com", "Zoë <Zoë.Private@Example.com>"
    message["Subject"] = "hello"
    message.set_content("hello")
    try:
        with pytest.raises(smtp.MailServerUnavailable) as refused:
            smtp.send(f"smtp://127.0.0.1:{port}", message)
    finally:
        controller.stop()
    text = str(refused.value)
    assert "550" in text and "<recipient>" in text
    # The server echoes the address as UTF-8 bytes: no spelling of it is left.
    assert not [
        form for form in ("zoë", "zo\\xc3\\xab", "zo\\xeb", "zo\\u00eb") if form in text.lower()
    ]
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
