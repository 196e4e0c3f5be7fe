"""The growth bench's fast path writes what the real flow writes.

The whole shop places each template order twice: the first of each pair is recorded as the
template, the second is left as the real flow wrote it (its witness). One clone of every template
is then seeded, and every clone's rows, in every table of every component, must be the witness's
rows but for what differs between any two real orders (ids, times, tokens, the email); its view
through the API must be the witness's view under the same rule, and its template's view with
the same durations. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import stack as stacks
from workers.bench import growth, growth_seed
from workers.bench.stack import Broker, SystemStack
from workers.messaging.tables import inbox

TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?")
EMAIL = re.compile(r"[\w.+-]+@example\.com")
TRACKING = re.compile(r"\b(3S|JD)[0-9A-F]{14}\b")
# The sealed card a checkout sends on (fresh ciphertext each time), base64.
BLOB = re.compile(r"[A-Za-z0-9+/=_-]{60,}")


def normal(cell: Any) -> Any:
    """A cell with what differs between two real orders of the same body blanked out."""
    if not isinstance(cell, str):
        return cell
    text = TIME.sub("<time>", cell)
    text = growth_seed.UUID.sub("<id>", text)
    text = growth_seed.HEX.sub("<hex>", text)
    text = EMAIL.sub("<email>", text)
    text = TRACKING.sub("<tracking>", text)
    return BLOB.sub("<blob>", text)


# Which delivery applied an event (1 = first try) differs between two real orders too: a
# handler that met a transient fault (a locked SQLite file, a slow SMTP server) applied it on
# the second. The seeder copies its template's count, so only that the cell is there is compared.
ATTEMPTS = growth_seed.columns_of(inbox).index("attempts")


def rows_by_table(
    template: growth_seed.Template,
) -> dict[tuple[str, str], Counter[tuple[Any, ...]]]:
    """Per table, the order's rows as stored, normalised."""
    return {
        (component, table): Counter(
            tuple(
                "<attempts>"
                if table == inbox.name and index == ATTEMPTS
                else normal(cell.value if cell.text is None else _original(cell.text, template))
                for index, cell in enumerate(row)
            )
            for row in rows
        )
        for (component, table), rows in template.rows.items()
    }


def _original(text: str, template: growth_seed.Template) -> str:
    """A compiled cell filled with the template's own values again."""
    values: dict[str, str] = {"email": template.email}
    values |= {f"u{i}": value for i, value in enumerate(template.uuids)}
    values |= {f"h{i}": value for i, value in enumerate(template.hexes)}
    values |= {f"d_{literal}": literal for literal in template.derived}
    for i, (moment, sep) in enumerate(template.times):
        values[f"t{i}"] = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    return text.format_map(values)


def view_of(client: httpx.Client, url: str, order_id: str, *, durations: bool = True) -> Any:
    """The order's view, normalised; without ``durations``, the timeline's seconds since the
    order was placed blanked too (they differ between two real orders)."""
    response = client.get(f"{url}/api/orders/{order_id}")
    assert response.status_code == 200, response.text
    view = json.loads(normal(response.text))
    if not durations:
        for entry in view["timeline"]:
            entry["since_placed_s"] = "<seconds>"
    return view


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Any:
    if request.param == "sqlite":
        yield growth.Database(None)
        return
    missing = stacks.services_missing()
    if missing and not stacks.services_required():
        pytest.skip(missing)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    db = growth.Database.open(stacks.POSTGRES_ADMIN_URL, f"test{stamp}")
    yield db
    db.drop()


def test_clones_are_the_rows_the_real_flow_writes(tmp_path: Path, database: Any) -> None:
    broker = Broker.open(None, tmp_path)
    data_dir = tmp_path / "data"
    (tmp_path / "logs").mkdir()
    try:
        both = growth.record_templates(broker, data_dir, database, tmp_path, copies=2)
        count = growth.TEMPLATE_ORDERS
        templates, witnesses = both.templates[:count], both.templates[count:]
        store = database.store(data_dir)
        try:
            before = growth_seed.snapshot(store)
            layout = growth_seed.Layout(
                anchor=min(t.placed_at for t in templates) - timedelta(minutes=1),
                spacing=timedelta(seconds=30),
                outbox_retention=timedelta(days=7),
                inbox_retention=timedelta(days=8),
            )
            clones = growth_seed.seed(store, growth_seed.Recording(templates, {}), layout, 0, 1)
            after = growth_seed.snapshot(store)
        finally:
            store.close()
        # The clones' rows, found the way the templates' were: every new row names one clone.
        placed = [
            (order_id, layout.anchor, f"customer{number}@example.com")
            for number, order_id in enumerate(clones)
        ]
        seeded = growth_seed.record(before, after, placed)
        assert not any(changes for changes in seeded.aggregates.values())
        for clone, template, witness in zip(seeded.templates, templates, witnesses, strict=True):
            assert set(clone.rows) == set(witness.rows), clone.order_id
            # Ids, tokens and tracking numbers are the clone's own, not its template's.
            assert not set(clone.uuids) & set(template.uuids)
            assert not set(clone.hexes) & set(template.hexes)
            assert not set(clone.derived) & set(template.derived)
            assert clone.rows and rows_by_table(clone) == rows_by_table(witness), clone.order_id
        web = tmp_path / "Procfile.web"
        web.write_text(growth._web_lines())
        stack = SystemStack.start(
            broker, data_dir, tmp_path / "logs/web.log", env=database.env(), procfile=web
        )
        try:
            with httpx.Client(timeout=30) as client:
                for clone_id, template, witness in zip(clones, templates, witnesses, strict=True):
                    # As a real order of the same body reads; and with the template's durations,
                    # since every time of a clone moved by the same whole seconds.
                    expected = view_of(client, stack.url, witness.order_id, durations=False)
                    assert view_of(client, stack.url, clone_id, durations=False) == expected
                    assert expected["status"] in ("SHIPPED", "CANCELLED")
                    assert view_of(client, stack.url, clone_id) == view_of(
                        client, stack.url, template.order_id
                    )
        finally:
            stack.stop()
    finally:
        broker.close()
