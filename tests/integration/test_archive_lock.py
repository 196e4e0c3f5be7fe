"""The archive directory's lock: the relay's append waits while an erasure rewrites the files,
so no pruned batch is swapped away (issue #14). The archive is plain JSON lines; the relay reads
operations' erased orders as it appends, hence a database of the stack under test."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workers.messaging.tables import outbox
from workers.operations import archives, erasure, retention

ORDER = "6f1c2a3b-0000-4000-8000-000000000001"
WAIT_S = 0.5


def row(subject: str, name: str) -> dict[str, object]:
    data = {"customer": {"name": name, "email": "ada@example.com"}, "order_id": subject}
    return {"seq": 1, "id": subject, "subject": subject, "event": {"data": data}}


def rows_in(archive_dir: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(archive_dir.glob("*-outbox-*.jsonl"))
        for line in path.read_text("utf-8").splitlines()
    ]


def test_an_append_waits_while_the_directory_is_locked(tmp_path: Path) -> None:
    appended = threading.Event()

    def relay() -> None:
        retention._archive(tmp_path, "shop", outbox, [row(ORDER, "Ada")])
        appended.set()

    with archives.locked(tmp_path):
        writer = threading.Thread(target=relay)
        writer.start()
        assert not appended.wait(WAIT_S), "the relay appended while an erasure held the lock"
        assert rows_in(tmp_path) == []
    writer.join(timeout=10)

    assert appended.is_set()
    assert [r["subject"] for r in rows_in(tmp_path)] == [ORDER]


def test_a_batch_appended_during_an_erasure_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "6f1c2a3b-0000-4000-8000-000000000002"
    retention._archive(tmp_path, "shop", outbox, [row(ORDER, "Ada")])
    started, release = threading.Event(), threading.Event()
    swap = Path.replace

    def slow_swap(self: Path, target: Path) -> Path:
        # The erasure has read the file and written its new copy, and not yet swapped it in.
        started.set()
        release.wait(10)
        return swap(self, target)

    monkeypatch.setattr(Path, "replace", slow_swap)
    eraser = threading.Thread(target=erasure._erase_archives, args=(tmp_path, {ORDER}))
    eraser.start()
    assert started.wait(10)
    relay = threading.Thread(
        target=retention._archive, args=(tmp_path, "shop", outbox, [row(other, "Bo")])
    )
    relay.start()
    relay.join(timeout=WAIT_S)  # without the lock it appends now, to the file about to go
    release.set()
    eraser.join(timeout=10)
    relay.join(timeout=10)

    kept = {str(r["subject"]): r for r in rows_in(tmp_path)}
    assert set(kept) == {ORDER, other}  # the batch appended meanwhile is there
    assert kept[ORDER]["event"]["data"]["customer"]["name"] == "erased"  # type: ignore[index]
    assert kept[other]["event"]["data"]["customer"]["name"] == "Bo"  # type: ignore[index]
