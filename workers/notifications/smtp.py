"""Handing a message to the SMTP server of SHOESHOP_SMTP_URL, with the standard library's smtplib.

smtp://host[:port] (25 unless named) upgrades to TLS with STARTTLS when the server offers it;
smtps://host[:port] (465 unless named) speaks TLS from the start. A user and password in the URL
log in, and are never sent over a connection that is not encrypted. Anything that keeps the
server from accepting the message (unreachable, a timeout, a 4xx or 5xx answer, no TLS to log in
over) is a MailServerUnavailable: transient, so the delivery is retried with backoff and parked
when it keeps failing, like any message; it never stops an order.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import getaddresses
from urllib.parse import unquote, urlsplit

from workers.messaging.erasure import redact
from workers.messaging.errors import TransientError

TIMEOUT_S = 10.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class MailServerUnavailable(TransientError):
    """The SMTP server did not take the message; the text says what it answered, if anything."""


def send(url: str, message: EmailMessage) -> None:
    """Deliver ``message`` to its To address through the server at ``url``.
    Raises MailServerUnavailable; the URL's password is never in its text."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        with _connect(parts.scheme, host, port) as server:
            encrypted = parts.scheme == "smtps"
            server.ehlo()
            if not encrypted and server.has_extn("starttls"):
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
                encrypted = True
            if parts.username is not None:
                if not encrypted:
                    raise MailServerUnavailable(
                        f"{host}:{port} offers no STARTTLS: the password is not sent in clear"
                    )
                server.login(unquote(parts.username), unquote(parts.password or ""))
            server.send_message(message)
    except MailServerUnavailable:
        raise
    except (smtplib.SMTPException, OSError) as exc:  # socket errors, timeouts, TLS, refusals
        # Without the recipient's address (a refusal names it, a server's answer may echo it,
        # in any spelling): this text reaches the logs and the dead letters, which an erasure
        # cannot clean of it, so neither it nor a chained exception carries the address.
        said = redact(_described(exc), _addresses(message), mark="<recipient>")
        raise MailServerUnavailable(f"{host}:{port} did not take the mail: {said}") from None


def _described(exc: BaseException) -> str:
    """What the server or the socket said: each refusal's code and text, decoded."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"recipient refused: {code} {_text(answer)}" for code, answer in exc.recipients.values()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)


def _addresses(message: EmailMessage) -> list[str]:
    """The message's recipients' addresses, without their display names."""
    return [address for _, address in getaddresses(message.get_all("To") or []) if address]


def _connect(scheme: str, host: str, port: int) -> smtplib.SMTP:
    if scheme == "smtps":
        return smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_S, context=ssl.create_default_context())
    return smtplib.SMTP(host, port, timeout=TIMEOUT_S)
