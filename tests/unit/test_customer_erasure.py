"""The erasure `shoeshop erase` and the admin page share (workers.customer_erasure): which emails
it refuses before reading anything, and that the CLI's path to it loads no web stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
        "a" * 255,
        "@",
        "ada@",
        "@example.com",
        "a@b\nc",
        "ada\x00@example.com",
        "\ud800@x.io",
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
