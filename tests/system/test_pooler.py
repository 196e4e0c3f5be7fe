"""Every process behind PgBouncer in transaction mode (issue #18, a deployment with a pooler).

PgBouncer refuses libpq's `options` startup parameter and lends each transaction whichever server
connection is free, so nothing may ride on a session: not the schema (chosen per statement by
SQLAlchemy's schema_translate_map), not a prepared statement (psycopg's are switched off by
SHOESHOP_DATABASE_PREPARED_STATEMENTS=off, which PgBouncer 1.18, Debian 12's, needs). The time
zone is the one session setting PgBouncer tracks per client; the test database's own zone is
set far from UTC so that a time read in another zone shows.

A PgBouncer of the test's own (Debian's `pgbouncer` package; run as the `postgres` user when the
test runs as root, since it refuses root) fronts the services stack's database with three server
connections; the whole shop is migrated, seeded and run through it, and orders ship.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support import stack as stacks
from tests.support.processes import ROOT, Processes, free_port, seed_catalogue
from tests.support.shop import place, status, wait_for
from workers.mailcatcher import start_in_thread as start_catcher

pytestmark = pytest.mark.timeout(300)

SHOP = ("gateway", "web", "shop", "orders", "payments", "shipping", "notifications", "relay")
SERVER_CONNECTIONS = 3
ORDERS = 24
FAR_FROM_UTC = "Pacific/Chatham"  # +13:45 or +12:45: no rounding hides it


@dataclass
class Bouncer:
    """A PgBouncer in transaction mode on a port of its own, in front of 127.0.0.1:5432."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def show(self, what: str) -> list[dict[str, object]]:
        """A table of PgBouncer's console (SHOW CLIENTS, SHOW SERVERS, SHOW STATS)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as conn:
            cursor = conn.execute(f"SHOW {what}")  # the console takes the simple protocol only
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_bouncer() -> Bouncer:
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        if stacks.services_required():
            pytest.fail("SHOESHOP_REQUIRE_SERVICES=1 but pgbouncer is not installed")
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    directory = Path(tempfile.mkdtemp(prefix="shoeshop-pgbouncer-"))
    port = free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        "* = host=127.0.0.1 port=5432\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory}/users.txt\n"
        "admin_users = postgres\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\n"
        "max_client_conn = 1000\n"
        f"logfile = {directory}/pgbouncer.log\n"
    )
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (directory, *directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    bouncer = Bouncer(port, directory, process)
    deadline = time.monotonic() + 20
    while True:
        try:
            bouncer.show("VERSION")
            return bouncer
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = directory / "pgbouncer.log"
                raise AssertionError(
                    f"pgbouncer did not start:\n{log.read_text() if log.exists() else ''}"
                ) from None
            time.sleep(0.2)


@dataclass
class PooledShop:
    processes: Processes
    bouncer: Bouncer

    @property
    def url(self) -> str:
        return self.processes.url("web")


@pytest.fixture
def pooled_shop(tmp_path: Path) -> Iterator[PooledShop]:
    if reason := stacks.services_missing():
        if stacks.services_required():
            pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    stack = stacks.start_services(tmp_path / "var")
    database = stack.env["SHOESHOP_DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(stacks.POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{database}\" SET timezone TO '{FAR_FROM_UTC}'")
    bouncer = start_bouncer()
    catcher = start_catcher(tmp_path / "mail")
    plain = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    env = {
        **plain,
        **stack.env,
        "SHOESHOP_DATABASE_URL": bouncer.url(database),
        "SHOESHOP_DATABASE_PREPARED_STATEMENTS": "off",
        "SHOESHOP_SMTP_URL": catcher.url,
    }
    processes = Processes(env, tmp_path / "logs")
    try:
        seed_catalogue(processes.env)
        processes.start_all(SHOP)
        yield PooledShop(processes, bouncer)
    finally:
        processes.close()
        catcher.stop()
        bouncer.stop()
        stack.close()


def test_the_whole_shop_runs_through_pgbouncer_in_transaction_mode(pooled_shop: PooledShop) -> None:
    url = pooled_shop.url
    sizes = [str(38 + n % 6) for n in range(ORDERS)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        placed = list(pool.map(lambda size: place(url, size), sizes))

    wait_for(
        lambda: all(status(url, order_id) == "SHIPPED" for order_id in placed) or None,
        timeout_s=120,
        every_s=1,
    )

    # Many clients, a few server connections: each transaction was lent whichever was free.
    clients = [row for row in pooled_shop.bouncer.show("CLIENTS") if row["database"] != "pgbouncer"]
    servers = [row for row in pooled_shop.bouncer.show("SERVERS") if row["database"] != "pgbouncer"]
    assert len(clients) > 2 * SERVER_CONNECTIONS, clients
    assert 0 < len(servers) <= SERVER_CONNECTIONS, servers
    # Nothing failed inside PgBouncer (a refused startup parameter, a missing prepared
    # statement) and no process logged a database error.
    log = (pooled_shop.bouncer.directory / "pgbouncer.log").read_text()
    assert "unsupported startup parameter" not in log
    for name in SHOP:
        text = pooled_shop.processes.log(name).read_text(errors="replace")
        assert "prepared statement" not in text, pooled_shop.processes.tail(name)
        assert "psycopg.errors" not in text, pooled_shop.processes.tail(name)


def test_times_read_through_the_pooler_are_utc(pooled_shop: PooledShop) -> None:
    # A fresh process reads the database's clock and a stored time through PgBouncer, after
    # the shop's own processes have used (and the pooler reused) every server connection.
    order_id = place(pooled_shop.url, "40")
    wait_for(lambda: status(pooled_shop.url, order_id) == "SHIPPED" or None, timeout_s=60)
    probe = (
        "from sqlalchemy import func, select\n"
        "from workers.messaging.database import engine_for\n"
        "from workers.messaging.tables import outbox\n"
        "latest = select(func.max(outbox.c.created_at))\n"
        "with engine_for('orders').connect() as conn:\n"
        "    for _ in range(5):\n"
        "        print(conn.execute(select(func.now())).scalar_one().utcoffset())\n"
        "        print(conn.execute(latest).scalar_one().utcoffset())\n"
        "        conn.rollback()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=pooled_shop.processes.env, cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    offsets = set(done.stdout.decode().split("\n")) - {""}
    assert offsets == {"0:00:00"}, offsets
