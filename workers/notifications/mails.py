"""The mails themselves: each one a text part and an HTML part, built from what the events said.

Pure functions of their inputs (no I/O), so what a customer reads is tested without a server.
Every value a customer or the shop typed is escaped in the HTML part; a card shows its brand and
last four digits only (events carry nothing more: the number is sealed at checkout).
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from typing import Any

from workers.messaging.envelope import utcnow
from workers.notifications.store import CANCELLED, CONFIRMATION, REFUNDED, SHIPPED, Recipient

# Why an order was cancelled, as the customer reads it in the mail: every reason orders gives
# (workers.orders.domain.Reason); one not listed yet reads as its code in words.
REASONS = {
    "payment_declined": "your card was declined",
    "customer_request": "you asked us to cancel it",
    "payment_timeout": "the payment did not arrive in time",
    "shipping_timeout": "your parcel could not leave in time",
    "invalid_order": "we could not process it",
    "not_accepted": "we could not take it up in time",
}
CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£"}
# A declined card was never charged; a payment that missed its deadline may still arrive, and
# is then refunded (with a mail of its own).
NOTHING_TAKEN = ("payment_declined",)
LATE_PAYMENT = "payment_timeout"
# Where the refund of a cancelled order stands, as its status notice's steps say.
REFUNDED_NOW, REFUNDING = "refunded", "refunding"


@dataclass(frozen=True)
class Mail:
    """What a mail says, before it becomes a message: ``paragraphs`` are plain text, ``lines``
    (label, value) a small table; the link goes last."""

    kind: str
    subject: str
    greeting: str
    paragraphs: Sequence[str]
    lines: Sequence[tuple[str, str]] = ()
    link_text: str = "Track your order"


def money(cents: int, currency: str) -> str:
    """Integer cents as an amount: 12900 EUR reads "€129.00"."""
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign}{amount}" if sign else f"{amount} {currency}"


def reason_in_words(reason: str | None) -> str:
    if not reason:
        return "we could not complete it"
    return REASONS.get(reason, reason.replace("_", " "))


def card(who: Recipient) -> str:
    return f"{who.card_brand.capitalize()} ending in {who.card_last4}"


def confirmation(who: Recipient, items: Sequence[dict[str, Any]]) -> Mail:
    lines = [
        (
            f"{item['quantity']} x {item['name']}, size {item['size']}",
            money(item["quantity"] * item["unit_price_cents"], who.currency),
        )
        for item in items
    ]
    lines.append(("Total", money(who.total_cents, who.currency)))
    return Mail(
        kind=CONFIRMATION,
        subject=f"We have your order {short(who.order_id)}",
        greeting=f"Hello {who.name},",
        paragraphs=[
            "Thank you for your order. We are taking the payment from your "
            f"{card(who)}, and we will write again when your parcel leaves.",
        ],
        lines=lines,
    )


def shipped(who: Recipient, carrier: str, tracking_number: str) -> Mail:
    return Mail(
        kind=SHIPPED,
        subject=f"Your order {short(who.order_id)} is on its way",
        greeting=f"Hello {who.name},",
        paragraphs=[f"Your parcel has left with {carrier}."],
        lines=[("Carrier", carrier), ("Tracking number", tracking_number)],
    )


def cancelled(who: Recipient, reason: str | None, refund: str | None) -> Mail:
    """``refund``: REFUNDED_NOW, REFUNDING, or None when no refund step was named."""
    paragraphs = [f"We cancelled your order {short(who.order_id)}: {reason_in_words(reason)}."]
    paid = money(who.total_cents, who.currency)
    if refund == REFUNDED_NOW:
        paragraphs.append(
            f"The {paid} you paid is refunded to your {card(who)}. Your bank may take a few "
            "days to show it."
        )
    elif refund == REFUNDING:
        paragraphs.append(
            f"The {paid} you paid is being refunded to your {card(who)}; we will write when it "
            "is done."
        )
    elif reason in NOTHING_TAKEN:
        paragraphs.append("Nothing was taken from your card.")
    elif reason == LATE_PAYMENT:
        paragraphs.append("No payment reached us in time; if one still arrives, we refund it.")
    else:
        paragraphs.append(
            "If anything was taken from your card, it is refunded; we will write when it is."
        )
    return Mail(
        kind=CANCELLED,
        subject=f"Your order {short(who.order_id)} is cancelled",
        greeting=f"Hello {who.name},",
        paragraphs=paragraphs,
        link_text="See your order",
    )


def refunded(who: Recipient, amount_cents: int) -> Mail:
    return Mail(
        kind=REFUNDED,
        subject=f"Your refund for order {short(who.order_id)}",
        greeting=f"Hello {who.name},",
        paragraphs=[
            f"We have refunded {money(amount_cents, who.currency)} to your {card(who)}. "
            "Your bank may take a few days to show it."
        ],
        link_text="See your order",
    )


def short(order_id: str) -> str:
    """The order number as the shop's pages show it first: its first eight characters."""
    return order_id[:8].upper()


def message(
    mail: Mail, who: Recipient, *, event_id: str, sender: str, public_url: str
) -> EmailMessage:
    """The mail as an RFC 5322 message to ``who``, its Message-ID ``<event_id@sender's domain>``:
    the same event always gives the same message, so a server that sees it twice (a redelivery
    after a crash between its acceptance and our commit) can drop the second."""
    link = f"{public_url}/orders/{who.order_id}"
    # An address beyond ASCII (which checkout accepts) needs SMTPUTF8 (RFC 6531): the message is
    # then written in UTF-8, and smtplib asks the server for it (one that lacks it refuses: the
    # delivery is retried, then parked).
    international = not who.email.isascii()
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if international else email.policy.default)
    msg["Subject"] = mail.subject
    msg["From"] = sender
    local, _, domain = who.email.rpartition("@")
    msg["To"] = Address(display_name=who.name, username=local, domain=domain)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id(event_id, sender)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the shop
    msg.set_content(_text(mail, link))
    msg.add_alternative(_html(mail, link), subtype="html")
    # The parts' boundary from the event too, not from the random module (the standard
    # library's default): the same event gives the same body, and a worker thread does not draw
    # from the process's shared random state. "=_" never occurs in quoted-printable text.
    msg.set_boundary(f"=_{event_id}")
    return msg


def message_id(event_id: str, sender: str) -> str:
    """``<event_id@domain>``, the domain the sender's (SHOESHOP_MAIL_FROM, checked by Settings)."""
    header = EmailMessage()
    header["From"] = sender
    domain = header["From"].addresses[0].domain
    return f"<{event_id}@{domain}>"


def _text(mail: Mail, link: str) -> str:
    parts = [mail.greeting, "", *[p + "\n" for p in mail.paragraphs]]
    if mail.lines:
        width = max(len(label) for label, _ in mail.lines)
        parts += [f"  {label.ljust(width)}  {value}" for label, value in mail.lines] + [""]
    parts += [f"{mail.link_text}: {link}", "", "The shoe shop"]
    return "\n".join(parts) + "\n"


def _html(mail: Mail, link: str) -> str:
    rows = "".join(
        f'<tr><td>{escape(label)}</td><td style="text-align:right">{escape(value)}</td></tr>'
        for label, value in mail.lines
    )
    table = f'<table cellpadding="4">{rows}</table>' if rows else ""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in mail.paragraphs)
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>{escape(mail.greeting)}</p>{paragraphs}{table}"
        f'<p><a href="{escape(link, quote=True)}">{escape(mail.link_text)}</a></p>'
        "<p>The shoe shop</p></body></html>\n"
    )
