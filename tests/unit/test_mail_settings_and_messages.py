"""The notifications' settings (SMTP URL, sender, public URL) and the mails they build: each bad
value refused with the variable and the fault named; what a mail says, escaped, without a card."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from config.settings import ConfigurationError, Settings
from workers.notifications import mails
from workers.notifications.store import Recipient


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env(environ)
    return str(refused.value)


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("http://mail.example.com", "http:// is not one of them"),
        ("smtp://", "it has no host"),
        ("smtp://mail.example.com:0", "its port is not a number from 1 to 65535"),
        ("smtp://mail.example.com/inbox", "it names a path, which SMTP has no use for"),
        (" smtp://mail.example.com", "it starts or ends with whitespace"),
        ("mail.example.com:587", "it has no scheme://"),
        (
            "smtp://mail.example.com:587?tls=1",
            "it has a query or a fragment, which would be ignored",
        ),
    ],
)
def test_an_smtp_url_that_is_no_smtp_url_is_refused(url: str, fault: str) -> None:
    message = refusal({"SHOESHOP_SMTP_URL": url})
    assert message.startswith("SHOESHOP_SMTP_URL must be smtp://")
    assert message.endswith(f": {fault}")


def test_an_smtp_password_is_never_shown() -> None:
    message = refusal({"SHOESHOP_SMTP_URL": "smtp://shop:hunter2@mail.example.com/x"})
    assert "hunter2" not in message and "smtp://shop:***@mail.example.com/x" in message
    settings = Settings.from_env({"SHOESHOP_SMTP_URL": "smtps://shop:hunter2@mail.example.com"})
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("sender", "fault"),
    [
        ("orders", "it does not parse"),
        ("orders@shop.example, sales@shop.example", "it names 2 addresses, not one"),
        ("Shop <orders@shop.example>\r\nBcc: all@example.com", "it holds control characters"),
        ("<@>", "it does not parse"),
    ],
)
def test_a_sender_that_is_no_address_is_refused(sender: str, fault: str) -> None:
    message = refusal({"SHOESHOP_MAIL_FROM": sender})
    assert message.startswith("SHOESHOP_MAIL_FROM must be the sender of the shop's mails")
    assert f": {fault}" in message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example",
        "https://shop.example/?a=1",
        "https://",
        "shop.example",
        "https://user:secret@shop.example",
    ],
)
def test_a_public_url_that_is_no_web_address_is_refused(url: str) -> None:
    message = refusal({"SHOESHOP_PUBLIC_URL": url})
    assert message.startswith("SHOESHOP_PUBLIC_URL must be") and "secret" not in message


def test_the_mail_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "SHOESHOP_SMTP_URL": "smtp://mail.example.com:587",
            "SHOESHOP_MAIL_FROM": "Shoe shop <orders@shop.example>",
            "SHOESHOP_PUBLIC_URL": "https://shop.example/",
        }
    )
    assert settings.smtp_url == "smtp://mail.example.com:587"
    assert settings.mail_from == "Shoe shop <orders@shop.example>"
    assert settings.public_url == "https://shop.example"


WHO = Recipient(
    order_id="0b214f92-4757-4521-a114-bd9c3a2225ad",
    name='Zoë <script>alert("x")</script> & Co',
    email="zoe@example.com",
    total_cents=23800,
    currency="EUR",
    card_brand="visa",
    card_last4="4242",
)
ITEMS = [
    {
        "sku": "RUN-001",
        "name": "Tempo <One>",
        "size": "42",
        "quantity": 2,
        "unit_price_cents": 11900,
    }
]


def built(mail: mails.Mail, event_id: str = "e6a1c0de-0000-4000-8000-000000000001") -> EmailMessage:
    message = mails.message(
        mail,
        WHO,
        event_id=event_id,
        sender="Shoe shop <orders@shop.example>",
        public_url="https://shop.example",
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_mail_escapes_what_was_typed_in_its_html_and_keeps_it_in_its_text() -> None:
    message = built(mails.confirmation(WHO, ITEMS))
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]

    assert 'Zoë <script>alert("x")</script> & Co' in text
    assert "<script>" not in html and "Tempo <One>" not in html
    assert "Zoë &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert "2 x Tempo <One>, size 42" in text and "€238.00" in text
    assert '<a href="https://shop.example/orders/0b214f92-4757-4521-a114-bd9c3a2225ad">' in html
    assert "Visa ending in 4242" in text


def test_an_address_beyond_ascii_is_written_for_smtputf8() -> None:
    who = Recipient(**{**vars(WHO), "email": "zoë@exämple.com"})
    message = mails.message(
        mails.shipped(who, "PostNL", "3S0123456789ABCD"),
        who,
        event_id="e1",
        sender="Shoe shop <orders@shop.example>",
        public_url="https://shop.example",
    )
    assert "<zoë@exämple.com>".encode() in message.as_bytes()


def test_the_message_id_and_the_body_come_from_the_event() -> None:
    first = built(mails.shipped(WHO, "PostNL", "3S0123456789ABCD"))
    again = built(mails.shipped(WHO, "PostNL", "3S0123456789ABCD"))
    other = built(mails.shipped(WHO, "PostNL", "3S0123456789ABCD"), event_id="other")

    assert first["Message-ID"] == "<e6a1c0de-0000-4000-8000-000000000001@shop.example>"
    assert first.get_body(("plain",)).get_content() == again.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert first.get_boundary() == again.get_boundary() != other.get_boundary()
    assert str(first["To"]).endswith("<zoe@example.com>")
    assert first["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize(
    ("reason", "refund", "says"),
    [
        ("payment_declined", None, "Nothing was taken from your card."),
        ("payment_timeout", None, "if one still arrives, we refund it"),
        ("customer_request", mails.REFUNDING, "€238.00 you paid is being refunded"),
        ("customer_request", mails.REFUNDED_NOW, "€238.00 you paid is refunded"),
        ("a_reason_added_later", None, "a reason added later"),
    ],
)
def test_a_cancellation_says_why_and_what_of_the_money(
    reason: str, refund: str | None, says: str
) -> None:
    text = built(mails.cancelled(WHO, reason, refund)).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert says in text
