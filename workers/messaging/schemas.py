"""The JSON Schema of each event version (docs/events/), and which changes to one are breaking.

Regenerate the files with ``python -m workers.messaging.schemas``: it writes the schema of every
current version and refuses, listing why, to overwrite one with a breaking change, which needs a
new version instead (docs/architecture.md, "Event versions").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from workers.messaging.contracts import MODELS

Schema = dict[str, Any]

EVENTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ADVICE = (
    "a breaking change needs a new version: add a version vN+1 (its model keyed by its type in "
    "contracts.MODELS and in the subscription table) and an upcaster from vN to it in "
    "versions.UPCASTERS; the committed schema of vN stays as it is"
)

# A limit narrows when it moves this way, or appears where there was none.
_UPPER_LIMITS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_LOWER_LIMITS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
# No order to compare these by: any new or changed value may refuse what the old one allowed.
_EXACT_LIMITS = ("pattern", "format", "multipleOf")


def schema_of(model: type[msgspec.Struct]) -> Schema:
    """The JSON Schema of what a consumer of the model accepts: msgspec's, a reference to the
    model's own definition among ``$defs`` (``{"$ref": "#/$defs/OrderPlaced", "$defs": …}``)."""
    return {"$schema": DIALECT, **msgspec.json.schema(model)}


def generated(models: Mapping[str, type[msgspec.Struct]] = MODELS) -> dict[str, Schema]:
    """Wire type of each current version → its schema."""
    return {type_: schema_of(model) for type_, model in models.items()}


def render(schema: Schema) -> str:
    """A schema as its committed file reads: stable key order, so a diff shows only changes."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_of(type_: str, directory: Path = EVENTS_DIR) -> Path:
    return directory / f"{type_}.json"


def write(directory: Path = EVENTS_DIR) -> dict[str, list[str]]:
    """Write the schema of every current version into ``directory``, except where the file
    already there would change in a breaking way; returns those, wire type → what breaks."""
    refused: dict[str, list[str]] = {}
    directory.mkdir(parents=True, exist_ok=True)
    for type_, schema in generated().items():
        path = path_of(type_, directory)
        if path.exists():
            breaks = breaking_changes(json.loads(path.read_text(encoding="utf-8")), schema)
            if breaks:
                refused[type_] = breaks
                continue
        path.write_text(render(schema), encoding="utf-8")
    return refused


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What in ``new`` breaks the consumers or producers of the version ``old`` describes, one
    ``path: what`` line each (``items[].quantity: maximum narrowed from none to 5``); empty when
    ``new`` is compatible.

    Breaking: a field removed or renamed; a new required field (or an optional one made
    required); a type that narrows (string → integer, a union or a nullable losing a member); a
    limit that narrows (maxLength, maximum, minLength, minimum, … tighter or new; a pattern or
    format new or changed; an enum losing values). Nested objects and array items are compared
    the same way. Adding an optional field or widening a limit is not breaking.

    Both schemas are JSON Schemas as msgspec or pydantic write them: local ``#/$defs/``
    references, the root one included; unions as ``anyOf``; a literal as an ``enum``, with or
    without its ``type``. Raises ValueError on any other reference, or a recursive one.
    """
    return _compare(inlined(old), inlined(new), "")


def inlined(schema: Schema) -> Schema:
    """The schema with every ``$ref`` replaced by what it points to, the root's included (msgspec
    writes the model itself as a reference to its definition)."""
    defs: Mapping[str, Any] = schema.get("$defs", {})

    def resolve(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if ref is None:
            return {key: resolve(value, seen) for key, value in node.items() if key != "$defs"}
        name = str(ref).removeprefix("#/$defs/")
        if name == ref or name not in defs or name in seen:
            raise ValueError(f"cannot follow the reference {ref!r}")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return resolve({**defs[name], **siblings}, seen | {name})

    inlined: Schema = resolve(schema, frozenset())
    return inlined


def _compare(old: Schema, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    new_branches = _branches(new)
    for branch in _branches(old):
        kind = _kind(branch)
        match = _counterpart(kind, new_branches)
        if match is None:
            now = ", ".join(sorted({_kind(b) for b in new_branches}))
            problems.append(f"{_where(path)}: type narrowed, {kind} no longer accepted (now {now})")
            continue
        problems += _narrowed_limits(branch, match, path)
        if kind == "object":
            problems += _object_changes(branch, match, path)
        elif kind == "array":
            problems += _compare(branch.get("items", {}), match.get("items", {}), f"{path}[]")
    return problems


def _branches(node: Schema) -> list[Schema]:
    """The alternatives a value may take, one JSON type each (a nullable string is two)."""
    for union in ("anyOf", "oneOf"):
        if union in node:
            shared = {key: value for key, value in node.items() if key != union}
            return [branch for member in node[union] for branch in _branches({**shared, **member})]
    types = node.get("type")
    if isinstance(types, list):
        return [{**node, "type": type_} for type_ in types]
    values = _allowed(node)
    if types is None and values is not None:
        # A literal as msgspec writes it: an enum without a type, which its values give.
        of_type: dict[str, list[Any]] = {}
        for value in values:
            of_type.setdefault(_json_type(value), []).append(value)
        rest = {key: value for key, value in node.items() if key not in ("enum", "const")}
        return [{**rest, "type": type_, "enum": same} for type_, same in of_type.items()]
    return [node]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for python, json_type in ((int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, python):
            return json_type
    return "array" if isinstance(value, list) else "object"


def _kind(branch: Schema) -> str:
    return str(branch.get("type", "any"))


def _counterpart(kind: str, branches: list[Schema]) -> Schema | None:
    """The new branch that takes over values of ``kind``: the same type first, else a wider."""
    wider = {"any", "number"} if kind == "integer" else {"any"}
    for accepted in ({kind}, wider):
        for branch in branches:
            if _kind(branch) in accepted:
                return branch
    return None


def _narrowed_limits(old: Schema, new: Schema, path: str) -> list[str]:
    where = _where(path)
    problems = [
        f"{where}: {key} narrowed from {old.get(key, 'none')} to {new[key]}"
        for key in _UPPER_LIMITS
        if key in new and (key not in old or new[key] < old[key])
    ]
    problems += [
        f"{where}: {key} narrowed from {old.get(key, 'none')} to {new[key]}"
        for key in _LOWER_LIMITS
        if key in new and (key not in old or new[key] > old[key])
    ]
    for key in (key for key in _EXACT_LIMITS if key in new and new[key] != old.get(key)):
        change = f"changed from {old[key]!r} to" if key in old else "added:"
        problems.append(f"{where}: {key} {change} {new[key]!r}")
    old_values, new_values = _allowed(old), _allowed(new)
    if new_values is not None:
        if old_values is None:
            problems.append(f"{where}: now limited to the values {new_values!r}")
        elif lost := [value for value in old_values if value not in new_values]:
            problems.append(f"{where}: no longer allows the values {lost!r}")
    return problems


def _allowed(node: Schema) -> list[Any] | None:
    """The values an enum or const allows; None when any value of the type is allowed."""
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return None if values is None else list(values)


def _object_changes(old: Schema, new: Schema, path: str) -> list[str]:
    problems: list[str] = []
    old_fields: Mapping[str, Schema] = old.get("properties", {})
    new_fields: Mapping[str, Schema] = new.get("properties", {})
    for name, schema in old_fields.items():
        if name in new_fields:
            problems += _compare(schema, new_fields[name], _join(path, name))
        else:
            problems.append(f"{_join(path, name)}: removed (or renamed)")
    was_required = set(old.get("required", ()))
    for name in new.get("required", ()):
        if name not in was_required:
            what = "now required" if name in old_fields else "a new required field"
            problems.append(f"{_join(path, name)}: {what}")
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if new_extra is False and old_extra is not False:
        problems.append(f"{_where(path)}: no longer accepts fields it does not name")
    elif isinstance(old_extra, dict) and isinstance(new_extra, dict):
        problems += _compare(old_extra, new_extra, _join(path, "*"))
    return problems


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return path or "(the data)"


def main() -> int:
    refused = write()
    for type_, breaks in refused.items():
        print(f"{path_of(type_)} not rewritten, breaking:", file=sys.stderr)
        for line in breaks:
            print(f"  {line}", file=sys.stderr)
    if refused:
        print(ADVICE, file=sys.stderr)
        return 1
    print(f"event schemas written to {EVENTS_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
