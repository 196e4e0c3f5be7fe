"""The erasure `shoeshop erase` and the admin page share (workers.customer_erasure): which emails
it refuses before reading anything, and that the CLI's path to it loads no web stack."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from shop.readmodel import email_key
from workers.customer_erasure import MAX_EMAIL_LENGTH, InvalidEmail, check_email

LOAD_ERASURE = """
import json, sys
import workers.customer_erasure
print(json.dumps(sorted(sys.modules)))
"""


def test_an_email_is_taken_without_the_spaces_around_it_up_to_the_longest_address() -> None:
    longest = "a" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"

    assert check_email("  Ada@Example.com\n") == "Ada@Example.com"
    assert check_email(longest) == longest


@pytest.mark.parametrize(
    "email",
    [
        "",
        " \t",
        "ada.example.com",
        "erased@erased.invalid",
        "ERASED@erased.invalid",
        "Erased@Erased.Invalid.",  # the same domain, written fully qualified
        "a" * 255,
        "@",
        "ada@",
        "@example.com",
        "a@b\nc",
        "ada\x00@example.com",
        "\ud800@x.io",
        "Zoë Quist <zoe@example.com>",  # a name and the address in brackets
        "ada lovelace@example.com",
        "ada@localhost",  # no checkout took a domain without a dot
    ],
)
def test_what_no_customer_can_have_as_email_is_refused_with_a_sentence(email: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        check_email(email)

    assert str(refused.value).endswith(".")


def test_the_erasure_the_cli_runs_loads_no_web_stack() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_ERASURE], capture_output=True, text=True, check=True
    ).stdout

    assert not {"flask", "werkzeug", "jinja2", "shop.web"} & set(json.loads(out))


def migration_0007_email_key() -> Any:
    """The email key shop revision 0007 filled the orders already there with."""
    path = Path(__file__).resolve().parents[2] / "workers/schema/versions/shop/0007_email_key.py"
    spec = importlib.util.spec_from_file_location("shop_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._email_key


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("ada@example.com", " Ada@Example.COM "),
        ("ärger@example.com", unicodedata.normalize("NFD", "Ärger@example.com")),
        # Greek: lower() writes a word's last sigma as ς; typed in capitals, it is the same.
        ("ΝΊΚΟΣ.ΠΑΠΠΆΣ@example.gr", "νίκος.παππάς@example.gr"),
        # 0.1.0 took a direction mark or a control character in an email; nobody can type it.
        ("ada@example.com", "ada\u200e@example.com"),
        ("ada@example.com", "a\x01da@example.com"),
    ],
)
def test_an_email_typed_as_an_operator_can_finds_the_one_the_checkout_stored(
    typed: str, stored: str
) -> None:
    assert email_key(check_email(typed)) == email_key(stored)
    assert migration_0007_email_key()({"email": stored}) == email_key(stored)


@pytest.mark.parametrize(
    ("one", "other"), [("straße@example.com", "strasse@example.com"), ("ada@x.com", "adb@x.com")]
)
def test_two_addresses_stay_two_customers(one: str, other: str) -> None:
    assert email_key(one) != email_key(other)
