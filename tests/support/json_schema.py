"""Values drawn from the JSON Schemas of the event contracts (docs/events/), for property tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from workers.messaging import contracts
from workers.messaging.envelope import unanchored

Schema = dict[str, Any]
# Unicode's Bidi_Control characters, which contracts.LINE_PATTERN refuses.
BIDI_CONTROLS = "".join(
    map(chr, [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
)


def values_of(schema: Schema, text_faults: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value the schema allows, for the keywords our schemas use (object, required,
    array, string and its date-time format, integer, enum, anyOf, and their limits); anything
    else fails the test, so a new keyword cannot slip past it unread. hypothesis-jsonschema
    would do this, but its last release no longer runs on the hypothesis this project installs.

    With ``text_faults``, a line of text (contracts.LINE_PATTERN) may also hold control
    characters and lone surrogates: what release 0.1.0's producers could put in a v1 event."""
    if "anyOf" in schema:
        return st.one_of([values_of(branch, text_faults) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        fields = {name: values_of(sub, text_faults) for name, sub in properties.items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: value for name, value in fields.items() if name in required},
            optional={name: value for name, value in fields.items() if name not in required},
        )
    if kind == "array":
        items = values_of(schema["items"], text_faults)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=3)
    if kind == "string" and schema.get("format") == "date-time":
        # RFC 3339 with an offset, as every producer writes one (contracts: tz=True).
        offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
            lambda minutes: timezone(timedelta(minutes=minutes))
        )
        moments = st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(8999, 1, 1), timezones=offsets
        )
        return moments.map(datetime.isoformat)
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 120)
        if schema.get("pattern") == contracts.LINE_PATTERN:
            # Any character but controls (Cc: C0, DEL, C1), surrogates (Cs), the line and
            # paragraph separators (Zl, Zp) and the bidi controls.
            if text_faults:
                alphabet = st.characters(exclude_categories=[])
            else:
                alphabet = st.characters(
                    exclude_categories=["Cc", "Cs", "Zl", "Zp"], exclude_characters=BIDI_CONTROLS
                )
            return st.text(alphabet, min_size=low, max_size=high)
        if "pattern" in schema:
            return st.from_regex(unanchored(schema["pattern"]), fullmatch=True).filter(
                lambda text: low <= len(text) <= high
            )
        return st.text(min_size=low, max_size=high)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        return st.integers(min_value=low, max_value=schema.get("maximum", 2**40))
    if kind == "null":
        return st.none()
    raise AssertionError(f"no values drawn for the schema keyword set {sorted(schema)}")
