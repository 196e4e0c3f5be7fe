"""The mails the local mail catcher kept (workers.mailcatcher): the pages /admin/mail and
/admin/mail/<key> and their JSON under /api/admin/mail, on the admin blueprints
(``add_routes``), so behind their password.

The catcher runs in development only, when SHOESHOP_SMTP_URL is unset; it keeps every message in
the standard library's Maildir at ``Settings.mail_dir``, which is all these views read (the
shop imports no other component, the catcher included). With SHOESHOP_SMTP_URL set the mail
goes to that server and the box stays empty, which the list says in words.

A key in a URL is checked before the box is asked: a Maildir key is made of letters, digits,
".", "_" and "-", so anything else ("/", "..", a NUL) is a 404, as is a key the box does not
hold. A message is shown as far as it can be read: a header or a part that will not parse is
left empty rather than failing the page. Its HTML part is shown inside ``<iframe sandbox
srcdoc>``: escaped into the attribute by Jinja, and run with no allowances (no script, no form,
no plugin, an origin of its own), under the page's own Content-Security-Policy.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue

from config.settings import get_settings
from shop.web.errors import error_response

log = logging.getLogger(__name__)

# The list shows the newest this many, and says how many more the box holds.
LIST_LIMIT = 200
# Maildir's unique names ("<seconds>.M<micro>P<pid>Q<count>.<host>") in the characters a host
# name may have; 255 is the longest file name most file systems take.
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
HEADERS = ("From", "To", "Subject", "Date", "Message-ID")
NO_SUCH_MAIL = "No caught mail has that key."
MAIL_UNREADABLE = "The mail directory could not be read, so no mail can be shown."


@dataclass(frozen=True)
class Caught:
    """One kept message's headers (empty when missing or unreadable); ``date`` is its Date
    header's, or else when the catcher stored it."""

    key: str
    date: datetime
    sender: str
    to: str
    subject: str
    message_id: str

    @property
    def linkable(self) -> bool:
        return is_key(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "date": self.date.isoformat(),
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "message_id": self.message_id,
        }


@dataclass(frozen=True)
class Shown:
    """One message in full: its headers, its text part and its HTML part (None when it has no
    such part)."""

    caught: Caught
    text: str | None
    html: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.caught.to_dict(), "text": self.text, "html": self.html}


@dataclass(frozen=True)
class Listing:
    newest: list[Caught]
    total: int

    @property
    def not_shown(self) -> int:
        return self.total - len(self.newest)


class MailUnreadable(Exception):
    """The Maildir exists but could not be read (permissions, a broken file system)."""


def add_routes(pages: Blueprint, api: Blueprint) -> None:
    """The pages on the admin pages' blueprint, the JSON on the admin API's (their guards ask
    for the password). ``path``: a key with a "/" in it reaches the view, which refuses it with
    the admin pages' own 404, rather than missing every route."""
    pages.add_url_rule("/mail", "mail_page", mail_page, methods=["GET"])
    pages.add_url_rule("/mail/<path:key>", "mail_message_page", mail_message_page, methods=["GET"])
    api.add_url_rule("/mail", "mail_json", mail_json, methods=["GET"])
    api.add_url_rule("/mail/<path:key>", "mail_message_json", mail_message_json, methods=["GET"])


def is_key(key: str) -> bool:
    """Whether ``key`` could be a Maildir key: no "/", no "..", bounded length."""
    return KEY_PATTERN.fullmatch(key) is not None and ".." not in key


def mail_page() -> ResponseReturnValue:
    try:
        listing = newest_mail(get_settings().mail_dir)
    except MailUnreadable:
        return render_template("admin_mail.html", listing=None, problem=MAIL_UNREADABLE), 503
    return render_template("admin_mail.html", listing=listing, problem=None)


def mail_message_page(key: str) -> ResponseReturnValue:
    try:
        shown = read_mail(get_settings().mail_dir, key)
    except MailUnreadable:
        return render_template("admin_mail.html", listing=None, problem=MAIL_UNREADABLE), 503
    if shown is None:
        return render_template("404.html", message=NO_SUCH_MAIL), 404
    return render_template("admin_mail_message.html", mail=shown)


def mail_json() -> ResponseReturnValue:
    """200 ``{"mail": [{"key", "date", "from", "to", "subject", "message_id"}], "total"}``,
    newest first, at most LIST_LIMIT of the ``total`` kept; 503 the Maildir is unreadable."""
    try:
        listing = newest_mail(get_settings().mail_dir)
    except MailUnreadable:
        return _unreadable()
    return jsonify(
        {"mail": [caught.to_dict() for caught in listing.newest], "total": listing.total}
    )


def mail_message_json(key: str) -> ResponseReturnValue:
    """200 the list's fields and ``"text"``, ``"html"`` (null without such a part); 404 no mail
    has that key; 503 the Maildir is unreadable."""
    try:
        shown = read_mail(get_settings().mail_dir, key)
    except MailUnreadable:
        return _unreadable()
    if shown is None:
        return error_response(404, "not_found", "no caught mail has that key")
    return jsonify(shown.to_dict())


def _unreadable() -> ResponseReturnValue:
    return error_response(503, "mail_unreadable", "the mail directory could not be read")


def newest_mail(directory: Path, limit: int = LIST_LIMIT) -> Listing:
    """The newest ``limit`` messages of the Maildir at ``directory`` (none when it does not
    exist), newest first; raises MailUnreadable."""
    box = _open(directory)
    if box is None:
        return Listing([], 0)
    found: list[Caught] = []
    try:
        keys = list(box.iterkeys())
    except FileNotFoundError:  # the directory without its cur/ and new/: nothing kept there
        return Listing([], 0)
    except OSError as exc:
        log.warning("mail directory %s unreadable: %s", directory, exc)
        raise MailUnreadable(str(directory)) from exc
    for key in keys:
        try:
            data = box.get_bytes(key)
        except (KeyError, OSError):  # removed since it was listed, or unreadable: skip it
            continue
        headers = _parse(data, headers_only=True)
        found.append(_caught(box, key, headers, data))
    found.sort(key=lambda caught: (caught.date, caught.key), reverse=True)
    return Listing(found[:limit], len(found))


def read_mail(directory: Path, key: str) -> Shown | None:
    """The message ``key`` of the Maildir at ``directory``; None when ``key`` is no Maildir key
    or the box does not hold it. Raises MailUnreadable."""
    if not is_key(key):
        return None
    box = _open(directory)
    if box is None:
        return None
    try:
        data = box.get_bytes(key)
    except (KeyError, FileNotFoundError):
        return None
    except OSError as exc:
        log.warning("mail %s in %s unreadable: %s", key, directory, exc)
        raise MailUnreadable(str(directory)) from exc
    message = _parse(data, headers_only=False)
    return Shown(
        _caught(box, key, message, data),
        text=_body(message, "plain"),
        html=_body(message, "html"),
    )


def _open(directory: Path) -> mailbox.Maildir | None:
    try:
        return mailbox.Maildir(directory, factory=None, create=False)
    except mailbox.NoSuchMailboxError:
        return None


def _parse(data: bytes, *, headers_only: bool) -> Message:
    """The message as the modern API reads it, or, should that fail, as the lenient legacy one
    does (its header values plain strings); an empty message if neither can."""
    try:
        return BytesParser(policy=email.policy.default).parsebytes(data, headersonly=headers_only)
    except Exception:
        log.warning("a caught mail does not parse with the default policy", exc_info=True)
    try:
        return email.message_from_bytes(data)
    except Exception:
        log.warning("a caught mail does not parse at all", exc_info=True)
        return Message()


def _caught(box: mailbox.Maildir, key: str, message: Message, data: bytes) -> Caught:
    headers = {name: _header(message, data, name) for name in HEADERS}
    return Caught(
        key=key,
        date=_date(message) or _stored_at(box, key),
        sender=headers["From"],
        to=headers["To"],
        subject=headers["Subject"],
        message_id=headers["Message-ID"],
    )


def _header(message: Message, data: bytes, name: str) -> str:
    """The header's value in words (encoded words decoded), "" when missing; when the parsed
    header will not turn into a string, its value as the legacy parser reads it."""
    try:
        value = message[name]
        return "" if value is None else str(value)
    except Exception:
        log.warning("header %s of a caught mail is unreadable", name, exc_info=True)
    try:
        value = email.message_from_bytes(data, policy=email.policy.compat32)[name]
        return "" if value is None else str(value)
    except Exception:
        return ""


def _date(message: Message) -> datetime | None:
    """The Date header's instant in UTC (taken as UTC when it names no zone), None when missing
    or unreadable."""
    try:
        header = message["Date"]
        when = getattr(header, "datetime", None)
        if not isinstance(when, datetime):
            if header is None:
                return None
            when = email.utils.parsedate_to_datetime(str(header))
    except Exception:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _stored_at(box: mailbox.Maildir, key: str) -> datetime:
    """When the catcher stored the message (its file's modification time)."""
    try:
        return datetime.fromtimestamp(box.get_message(key).get_date(), UTC)
    except Exception:
        return datetime.fromtimestamp(0, UTC)


def _body(message: Message, subtype: str) -> str | None:
    """The text of the message's preferred ``text/<subtype>`` part, None when it has none;
    undecodable bytes are replaced rather than refused."""
    try:
        part = _part(message, subtype)
    except Exception:
        log.warning("the body of a caught mail is unreadable", exc_info=True)
        return None
    if part is None:
        return None
    if isinstance(part, EmailMessage):
        try:
            content = part.get_content()
            if isinstance(content, str):
                return content
        except Exception:
            log.warning("a %s part of a caught mail is unreadable", subtype, exc_info=True)
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return None
    if not isinstance(payload, bytes):
        return None
    try:
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def _part(message: Message, subtype: str) -> Message | None:
    """``get_body``'s choice; for a message only the legacy parser could read, its first
    ``text/<subtype>`` part that is no attachment."""
    if isinstance(message, EmailMessage):
        return message.get_body(preferencelist=(subtype,))
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}" and not part.get_filename():
            return part
    return None
