"""What an erasure takes out of a failure's text (workers.messaging.erasure.redact): a customer's
values in every spelling a message, a repr or a JSON document quoted in a repr gives them."""

from __future__ import annotations

import json

import pytest

from workers.messaging.erasure import redact

NAME, LINE1 = "Zoë Çelik", "O'Brien Straße 7"


@pytest.mark.parametrize(
    "quoted",
    [
        pytest.param(f"gateway refused {NAME} at {LINE1}", id="as typed"),
        pytest.param(repr({"name": NAME, "line1": LINE1}), id="a repr of a dict"),
        pytest.param(ascii({"name": NAME, "line1": LINE1}), id="an ascii() of a dict"),
        pytest.param(json.dumps({"name": NAME, "line1": LINE1}), id="JSON"),
        pytest.param(repr(NAME.encode() + LINE1.encode()), id="UTF-8 bytes"),
        # A database error quoting its parameters: a JSON document inside a repr's tuple.
        pytest.param(repr((json.dumps({"name": NAME, "line1": LINE1}),)), id="JSON in a repr"),
        pytest.param(
            repr((json.dumps({"name": NAME, "line1": LINE1}, ensure_ascii=False),)),
            id="JSON as text in a repr",
        ),
    ],
)
def test_every_spelling_of_a_quoted_value_is_redacted(quoted: str) -> None:
    redacted = redact(quoted, [NAME, LINE1])

    assert "erased" in redacted
    for word in ("Zo", "elik", "Brien", "Stra"):
        assert word not in redacted, redacted
