"""The admin's view of the mail the local mail catcher kept (shop.web.admin_mail): the list,
one mail with its HTML part in a sandboxed frame, their JSON, the password, the keys a URL may
hold, and a box that is empty, missing or holds a mail that does not parse.

Messages are written straight into a Maildir under SHOESHOP_DATA_DIR (as workers.mailcatcher
keeps them); no database, broker or worker is involved.
"""

from __future__ import annotations

import base64
import html
import mailbox
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shop.web import admin_mail

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"ops:admin").decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"ops:not-the-password").decode()}
EVIL_NAME = "Ada <script>alert('name')</script> Lovelace"
EVIL_HTML = (
    "<!doctype html><html><body><p>Hello &amp; welcome</p>"
    '<script>alert("html")</script><a href="https://example.org/x?a=1&b=2">Track your order</a>'
    "</body></html>\n"
)
EMPTY_SENTENCE = (
    "No mail caught yet. With SHOESHOP_SMTP_URL set, mail goes to that server and is not kept here."
)
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def mail_dir(tmp_path: Path, setting: Callable[[str, str], None]) -> Path:
    """SHOESHOP_DATA_DIR for this test: the mail pages read its mail/ (not made yet)."""
    setting("SHOESHOP_DATA_DIR", str(tmp_path))
    return tmp_path / "mail"


def keep(
    directory: Path,
    *,
    subject: str,
    when: datetime,
    name: str = "Ada Lovelace",
    text: str = "Hello,\nTrack your order: http://127.0.0.1:8000/orders/x\n",
    html_part: str | None = "<p>Hello</p>",
    message_id: str | None = None,
) -> str:
    """A message kept in the Maildir at ``directory``, as the catcher keeps one; its key."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Shoe shop <orders@shoeshop.invalid>"
    message["To"] = Address(display_name=name, addr_spec="ada@example.com")
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id or f"<{subject.replace(' ', '-')}@shoeshop.invalid>"
    message.set_content(text)
    if html_part is not None:
        message.add_alternative(html_part, subtype="html")
    return mailbox.Maildir(directory, create=True).add(message.as_bytes())


def keep_raw(directory: Path, data: bytes) -> str:
    return mailbox.Maildir(directory, create=True).add(data)


def page_of(response: TestResponse) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def assert_api_error(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"] == code


def test_the_list_shows_the_newest_mail_first_each_linking_to_it(
    client: FlaskClient, mail_dir: Path
) -> None:
    older = keep(mail_dir, subject="We have your order 1A2B3C4D", when=BASE)
    newer = keep(mail_dir, subject="Your order 1A2B3C4D is on its way", when=BASE + timedelta(1))
    evil = keep(mail_dir, subject="Hello", when=BASE - timedelta(1), name=EVIL_NAME)

    page = page_of(client.get("/admin/mail", headers=ADMIN))

    keys = re.findall(r'<tr data-key="([^"]+)">', page)
    assert keys == [newer, older, evil]
    assert f'href="/admin/mail/{older}"' in page
    assert "2024-05-01 12:00:00 UTC" in page
    assert "Your order 1A2B3C4D is on its way" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(" in page
    assert EMPTY_SENTENCE not in page
    assert 'id="not-shown"' not in page


def test_the_dashboard_links_to_the_mail(client: FlaskClient) -> None:
    page = page_of(client.get("/admin", headers=ADMIN))

    assert re.search(r'<a id="mail-link" href="/admin/mail">Mail</a>', page)


def test_a_mail_shows_its_headers_its_text_and_its_html_in_a_sandbox(
    client: FlaskClient, mail_dir: Path
) -> None:
    key = keep(
        mail_dir,
        subject="We have your order 1A2B3C4D",
        when=BASE,
        name=EVIL_NAME,
        text=f"Hello {EVIL_NAME},\n\nTrack your order: http://127.0.0.1:8000/orders/x\n",
        html_part=EVIL_HTML,
        message_id="<event-1@shoeshop.invalid>",
    )

    page = page_of(client.get(f"/admin/mail/{key}", headers=ADMIN))

    assert "<script>" not in page
    escaped_name = "Ada &lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt; Lovelace"
    assert f"Hello {escaped_name}," in page
    assert re.search(f'<dd id="mail-to">[^<]*{re.escape(escaped_name)}', page)
    assert "Shoe shop &lt;orders@shoeshop.invalid&gt;" in page
    assert "&lt;event-1@shoeshop.invalid&gt;" in page
    assert "We have your order 1A2B3C4D" in page
    assert "2024-05-01 12:00:00 UTC" in page
    text = re.search(r'<pre id="mail-text">(.*?)</pre>', page, re.S)
    assert text and "Track your order: http://127.0.0.1:8000/orders/x" in text.group(1)
    frame = re.search(r"<iframe ([^>]*)></iframe>", page)
    assert frame is not None
    attributes = frame.group(1)
    assert re.search(r"(^| )sandbox( |$)", attributes)  # present, with no allowances
    assert 'sandbox="' not in attributes and "allow-" not in attributes
    srcdoc = re.search(r'srcdoc="([^"]*)"', attributes)
    assert srcdoc is not None
    assert html.unescape(srcdoc.group(1)) == EVIL_HTML


def test_the_api_lists_and_shows_the_mail(client: FlaskClient, mail_dir: Path) -> None:
    older = keep(mail_dir, subject="First", when=BASE, message_id="<first@shoeshop.invalid>")
    newer = keep(mail_dir, subject="Second", when=BASE + timedelta(hours=1), html_part=EVIL_HTML)

    listed = client.get("/api/admin/mail", headers=ADMIN)

    assert listed.status_code == 200 and listed.mimetype == "application/json"
    body = listed.get_json()
    assert body["total"] == 2
    assert [mail["key"] for mail in body["mail"]] == [newer, older]
    assert body["mail"][1] == {
        "key": older,
        "date": "2024-05-01T12:00:00+00:00",
        "from": "Shoe shop <orders@shoeshop.invalid>",
        "to": "Ada Lovelace <ada@example.com>",
        "subject": "First",
        "message_id": "<first@shoeshop.invalid>",
    }

    shown = client.get(f"/api/admin/mail/{newer}", headers=ADMIN)

    assert shown.status_code == 200
    mail = shown.get_json()
    assert mail["subject"] == "Second" and mail["key"] == newer
    assert mail["html"] == EVIL_HTML
    assert "Track your order" in mail["text"]
    assert set(mail) == {"key", "date", "from", "to", "subject", "message_id", "text", "html"}


@pytest.mark.parametrize(
    "url", ["/admin/mail", "/admin/mail/1.M1P1Q1.host", "/api/admin/mail", "/api/admin/mail/x"]
)
def test_the_mail_needs_the_admin_password(client: FlaskClient, mail_dir: Path, url: str) -> None:
    keep(mail_dir, subject="Secret", when=BASE)

    for headers in ({}, WRONG):
        response = client.get(url, headers=headers)

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert "Secret" not in response.get_data(as_text=True)
    if url.startswith("/api/"):
        assert_api_error(client.get(url), 401, "unauthorized")


# A path out of the box, percent-encoded or not; dots alone; a NUL; a key too long; a key with a
# character no Maildir key has; a valid key the box does not hold.
BAD_KEYS = [
    "..%2f..%2fetc",
    "..%2F..%2Fetc%2Fpasswd",
    "../../etc/passwd",
    "a/b",
    "..",
    ".",
    "..%2e",
    "%00",
    "1.M1P1Q1.host%00",
    "1" * 256,
    "1.M1P1Q1.host%3A2,S",
    "1.M1P1Q1.h%5C057st",
    "1712345678.M123456P999Q9.nowhere",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_is_no_kept_mail_is_a_404(client: FlaskClient, mail_dir: Path, key: str) -> None:
    keep(mail_dir, subject="Kept", when=BASE)

    page = client.get(f"/admin/mail/{key}", headers=ADMIN)

    assert page.status_code == 404
    assert "No caught mail has that key." in page.get_data(as_text=True)
    assert_api_error(client.get(f"/api/admin/mail/{key}", headers=ADMIN), 404, "not_found")


def test_an_empty_or_missing_box_says_so(client: FlaskClient, mail_dir: Path) -> None:
    for made in (False, True):
        if made:
            mailbox.Maildir(mail_dir, create=True)

        page = page_of(client.get("/admin/mail", headers=ADMIN))

        assert EMPTY_SENTENCE in page
        assert "<table" not in page
        listed = client.get("/api/admin/mail", headers=ADMIN)
        assert listed.status_code == 200
        assert listed.get_json() == {"mail": [], "total": 0}
        assert_api_error(
            client.get("/api/admin/mail/1.M1P1Q1.host", headers=ADMIN), 404, "not_found"
        )


def test_the_list_stops_at_the_newest_and_says_how_many_are_not_shown(
    client: FlaskClient, mail_dir: Path
) -> None:
    box = mailbox.Maildir(mail_dir, create=True)
    for number in range(admin_mail.LIST_LIMIT + 3):
        when = format_datetime(BASE + timedelta(minutes=number))
        box.add(f"Subject: Mail {number}\nDate: {when}\n\nHello {number}\n".encode())

    page = page_of(client.get("/admin/mail", headers=ADMIN))

    assert page.count("<tr data-key=") == admin_mail.LIST_LIMIT
    assert f"Mail {admin_mail.LIST_LIMIT + 2}<" in page
    assert "Mail 2<" not in page and "Mail 3<" in page
    not_shown = re.search(r'<p class="muted" id="not-shown">([^<]*)</p>', page)
    assert not_shown and not_shown.group(1).startswith("3 older mails are not shown")
    body = client.get("/api/admin/mail", headers=ADMIN).get_json()
    assert body["total"] == admin_mail.LIST_LIMIT + 3
    assert len(body["mail"]) == admin_mail.LIST_LIMIT
    assert body["mail"][0]["subject"] == f"Mail {admin_mail.LIST_LIMIT + 2}"


MALFORMED = [
    b"",
    b"no headers at all, just words\n",
    b"Subject: =?utf-8?q?broken=ZZ?=\nDate: not a date\nFrom: <<<@>>>\nTo: ,,,;;\n\nbody\n",
    b"Subject: Latin\nContent-Type: text/plain; charset=no-such-charset\n\n\xff\xfe caf\xe9\n",
    b"Subject: \xff\xfe raw bytes\nDate: Wed, 01 May 2024 12:00:00 -0000\n\n\xc3\x28\n",
    b"Subject: Cut\nContent-Type: multipart/alternative; boundary=xyz\n\n--xyz\n"
    b"Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n",
    b"Subject: Deep\nDate: Thu, 01 Jan 1970 00:00:00 +1400\nContent-Type: multipart/mixed\n\n",
]


def test_a_mail_that_does_not_parse_is_shown_as_far_as_it_can_be_read(
    client: FlaskClient, mail_dir: Path
) -> None:
    keys = [keep_raw(mail_dir, data) for data in MALFORMED]
    good = keep(mail_dir, subject="Readable", when=BASE)

    page = page_of(client.get("/admin/mail", headers=ADMIN))

    assert page.count("<tr data-key=") == len(MALFORMED) + 1
    assert "Readable" in page
    listed = client.get("/api/admin/mail", headers=ADMIN).get_json()
    assert {mail["key"] for mail in listed["mail"]} == {*keys, good}
    for key in keys:
        page_of(client.get(f"/admin/mail/{key}", headers=ADMIN))
        shown = client.get(f"/api/admin/mail/{key}", headers=ADMIN)
        assert shown.status_code == 200, shown.get_data(as_text=True)
    latin = client.get(f"/api/admin/mail/{keys[3]}", headers=ADMIN).get_json()
    assert latin["subject"] == "Latin" and "caf" in latin["text"]
