"""What the parent keeps of a finished 0.1.0 run: the data dir, RabbitMQ's state, the manifest.

Parent side, under the current code, after the child has stopped 0.1.0's processes; everything is
written into a staging directory that build.py verifies before it replaces the fixture.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import (
    QUEUES,
    RABBITMQ_HOST,
    TAG,
    BuildError,
    rabbitmq_list,
    say,
    transient,
    write_json,
)

COMPONENT_DBS = ("shop", "orders", "payments", "shipping", "operations")
GATEWAY_FILES = ("gateway/private.pem", "gateway/public.pem", "gateway/ledger.db")

# --- the data directory ---------------------------------------------------------------------


def save_data(build: str, data: Path, out: Path) -> None:
    """Copy what the current code needs to open this shop; leave out what is made at start."""
    keep = [f"{name}.db" for name in COMPONENT_DBS] + list(GATEWAY_FILES)
    for database in keep:
        if database.endswith(".db"):
            checkpoint(data / database)
    if build == "embedded":
        keep += [str(path.relative_to(data)) for path in aof_files(data / "redis")]
    for relative in keep:
        source = data / relative
        if not source.is_file():
            raise BuildError(f"{build}: {relative} is missing from the data dir {data}")
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out / relative)
    left_out = sorted(
        str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and not p.is_symlink()
    )
    say(f"{build}: kept {len(keep)} files; left out {sorted(set(left_out) - set(keep))}")


def aof_files(redis_dir: Path) -> list[Path]:
    """Redis 6 writes one appendonly.aof; Redis 7 an appendonlydir/ of parts."""
    files = [p for p in redis_dir.glob("appendonly*") if p.is_file()]
    files += [p for p in (redis_dir / "appendonlydir").glob("*") if p.is_file()]
    if not files:
        raise BuildError(f"no append-only file in {redis_dir}")
    return sorted(files)


def checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the file, so the -wal and -shm files can be left behind."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise BuildError(f"{database} is still in use: its WAL could not be checkpointed")
    for suffix in ("-wal", "-shm"):
        extra = database.with_name(database.name + suffix)
        if extra.exists() and (suffix == "-shm" or extra.stat().st_size == 0):
            extra.unlink()
    if database.with_name(database.name + "-wal").exists():
        raise BuildError(f"{database}-wal is not empty after a checkpoint")


# --- RabbitMQ: the waiting messages and the declarations ------------------------------------


def save_rabbitmq_state(vhost: str, out: Path) -> None:
    """Record the declarations, then take every message off ``orders`` (nothing consumes it)."""
    write_json(out / "queues.json", rabbitmq_declarations(vhost))
    messages = take_messages(vhost, "orders")
    write_json(out / "messages.json", messages)
    say(f"rabbitmq: took {len(messages)} message(s) off 'orders' in vhost {vhost}")


def rabbitmq_declarations(vhost: str) -> dict[str, Any]:
    """Queues, exchanges and bindings as 0.1.0 declared them, arguments as {name: value}.

    ``shoeshop`` is what a test declares before it publishes the messages again; ``celery`` is
    what Celery itself declared (native delayed delivery), for reference. Per-worker control and
    event queues, and RabbitMQ's own exchanges, are left out.
    """
    queues = rabbitmq_list(
        "list_queues", vhost, "name type durable auto_delete exclusive arguments messages"
    )
    exchanges = rabbitmq_list(
        "list_exchanges", vhost, "name type durable auto_delete internal arguments"
    )
    bindings = rabbitmq_list(
        "list_bindings",
        vhost,
        "source_name source_kind destination_name destination_kind routing_key arguments",
    )
    everything = {
        "queues": [q for q in queues if not transient(q["name"])],
        "exchanges": [e for e in exchanges if e["name"] and not transient(e["name"])],
        "bindings": [b for b in bindings if b["source_name"] and not transient(b["source_name"])],
    }
    ours = {
        "queues": [q for q in everything["queues"] if _ours(q["name"])],
        "exchanges": [e for e in everything["exchanges"] if _ours(e["name"])],
        "bindings": [b for b in everything["bindings"] if _ours(b["source_name"])],
    }
    theirs = {kind: [x for x in found if x not in ours[kind]] for kind, found in everything.items()}
    return {"shoeshop": ours, "celery": theirs}


def _ours(name: str) -> bool:
    return name in QUEUES or name.startswith("shoeshop")


def take_messages(vhost: str, queue: str) -> list[dict[str, Any]]:
    """basic_get until empty: each message's exchange, routing key, exact body and properties."""
    import amqp

    connection = amqp.Connection(
        host=RABBITMQ_HOST, userid="guest", password="guest", virtual_host=vhost
    )
    connection.connect()
    try:
        # auto_decode off: the body stays the bytes the broker holds, not a decoded string.
        channel = amqp.Channel(connection, auto_decode=False)
        channel.open()
        taken = []
        while (message := channel.basic_get(queue=queue, no_ack=False)) is not None:
            taken.append(message_record(message))
            channel.basic_ack(message.delivery_tag)
        return taken
    finally:
        connection.close()


def message_record(message: Any) -> dict[str, Any]:
    properties = dict(message.properties)
    headers = properties.pop("application_headers", None) or {}
    # x- headers (a quorum queue's x-delivery-count) are the broker's, not what 0.1.0 sent.
    added = {key: headers.pop(key) for key in list(headers) if key.startswith("x-")}
    body: bytes = message.body
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "exchange": message.delivery_info["exchange"],
        "routing_key": message.delivery_info["routing_key"],
        "redelivered": message.delivery_info.get("redelivered", False),
        "body": text,
        "body_is_base64": is_base64,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "properties": plain(properties),
        "headers": plain(headers),
        "headers_added_by_the_broker": plain(added),
    }


def plain(value: Any) -> Any:
    """AMQP field values as JSON; the types JSON lacks are tagged ({"$bytes": base64}, ...)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    return value


# --- the manifest ---------------------------------------------------------------------------


def write_manifest(build: str, built_by: dict[str, str], result: dict[str, Any], out: Path) -> None:
    """manifest.json: what the child recorded, how it was built and loads, every file's hash."""
    manifest = {
        "fixture": f"shoeshop {TAG} upgrade fixture ({build})",
        "build": build,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "built_by": built_by,
        **result,
        "how_to_load": HOW_TO_LOAD[build],
        "files": {
            str(path.relative_to(out)): {
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
            for path in sorted(out.rglob("*"))
            if path.is_file()
        },
    }
    write_json(out / "manifest.json", manifest)


HOW_TO_LOAD = {
    "embedded": [
        "copy data/ to a fresh, writable directory D and set SHOESHOP_DATA_DIR=D",
        "start the embedded Redis on D/redis/redis.sock (EmbeddedRedis, or `shoeshop up` with no "
        "SHOESHOP_BROKER_URL): it runs with --dir D/redis --appendonly yes and loads "
        "appendonly.aof; the list 'orders' then holds the 3 waiting order.placed messages",
        "run `shoeshop db upgrade`, then start the processes, the gateway on D/gateway (its key "
        "opens the waiting orders' sealed cards)",
        "`shoeshop dlq replay <dead_letters[0].id>` with the gateway up pays the parked order once",
    ],
    "rabbitmq": [
        "copy data/ to a fresh, writable directory D and set SHOESHOP_DATA_DIR=D",
        "in a fresh vhost V, declare queues.json's 'shoeshop' exchanges, queues (with their "
        "arguments, as 0.1.0 declared them) and bindings; 'celery' is what Celery declares itself",
        "publish each messages.json entry to its exchange with its routing key: the body's bytes "
        "(UTF-8, or base64 when body_is_base64), its properties, and 'headers' as the "
        "application headers (not headers_added_by_the_broker)",
        "set SHOESHOP_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/V, run `shoeshop db upgrade`, "
        "then start the processes, the gateway on D/gateway",
        "`shoeshop dlq replay <dead_letters[0].id>` with the gateway up pays the parked order once",
    ],
}
