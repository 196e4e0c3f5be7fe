"""The cluster bed: a private link of network namespaces ("hosts"), a PostgreSQL cluster of the
test's own on it, and (tests/cluster/rabbit.py) three clustered RabbitMQ nodes.

Everything listens on the private link (10.77.0.0/24 on the bridge ``ccb0``) or on 127.0.0.1:
nothing is reachable from outside this machine, and nothing of the machine's own RabbitMQ,
Redis or PostgreSQL is used or touched. Every context manager tears down what it made, even when
the body fails.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUBNET = "10.77.0"
PREFIX_LENGTH = 24
# The root namespace's address on the link: the broker nodes and PostgreSQL listen here.
ROOT_ADDRESS = f"{SUBNET}.1"
BRIDGE = "ccb0"
NETNS_PREFIX = "ccb-"
FIRST_HOST = 11
# Every long-lived process of the bed runs niced, so the machine's other work keeps its share.
NICE = ("nice", "-n", "10")


def run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Host:
    """A network namespace on the link, with one address: a machine of its own to the shop."""

    name: str
    index: int

    @property
    def netns(self) -> str:
        return f"{NETNS_PREFIX}{self.name}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{FIRST_HOST + self.index}"

    @property
    def veth(self) -> str:
        """The root namespace's end of the host's cable, a port of the bridge."""
        return f"ccbv{self.index}"

    @property
    def peer(self) -> str:
        """The host's end of its cable, inside its namespace."""
        return f"ccbp{self.index}"

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *NICE, *command]

    def shell(self, line: str) -> str:
        """A shell line that runs ``line`` (a Procfile line) on this host, niced."""
        return f"exec ip netns exec {self.netns} {' '.join(NICE)} sh -c {shlex.quote(line)}"


@dataclass
class Link:
    """The bridge and the hosts plugged into it."""

    hosts: dict[str, Host]

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def cut(self, name: str) -> None:
        """Unplug a host: its packets go nowhere, its connections stay open (a partition)."""
        run("ip", "link", "set", self.hosts[name].veth, "down")

    def mend(self, name: str) -> None:
        run("ip", "link", "set", self.hosts[name].veth, "up")


@contextlib.contextmanager
def private_link(names: Sequence[str]) -> Iterator[Link]:
    """A bridge holding ROOT_ADDRESS, and one namespace per name, each on a veth pair."""
    remove_leftovers()
    link = Link({name: Host(name, index) for index, name in enumerate(names)})
    try:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{ROOT_ADDRESS}/{PREFIX_LENGTH}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for host in link.hosts.values():
            _plug(host)
        yield link
    finally:
        remove_leftovers()


def _plug(host: Host) -> None:
    run("ip", "netns", "add", host.netns)
    run("ip", "link", "add", host.veth, "type", "veth", "peer", "name", host.peer)
    run("ip", "link", "set", host.peer, "netns", host.netns)
    run("ip", "link", "set", host.veth, "master", BRIDGE, "up")
    inside = ("ip", "netns", "exec", host.netns, "ip")
    run(*inside, "link", "set", "lo", "up")
    run(*inside, "addr", "add", f"{host.address}/{PREFIX_LENGTH}", "dev", host.peer)
    run(*inside, "link", "set", host.peer, "up")


def remove_leftovers() -> None:
    """Delete the bed's namespaces (their veth pairs go with them) and its bridge, from this run
    or a killed earlier one: only names of the bed's own."""
    listed = run("ip", "-o", "netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ", 1)[0]
        if name.startswith(NETNS_PREFIX):
            run("ip", "netns", "del", name, check=False)
    for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        device = line.split(":")[1].strip().split("@")[0]
        if device == BRIDGE or device.startswith("ccbv"):
            run("ip", "link", "del", device, check=False)


@dataclass
class Postgres:
    """A PostgreSQL cluster of the test's own: initdb'd into a temporary directory, listening on
    the link's root address, trusting the link (it is a test bed: no password)."""

    base: Path
    address: str = ROOT_ADDRESS
    port: int = 5441
    popen: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.address}:{self.port}/{database}"

    def init(self) -> None:
        self.base.mkdir(parents=True)
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postgres", "postgres")
        run("runuser", "-u", "postgres", "--", "initdb", "-D", str(self.data), "-U", "postgres",
            "-A", "trust", "--no-sync", timeout=120)  # fmt: skip
        settings = {
            "listen_addresses": f"'{self.address}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data}'",
            # Five workers, two web processes, the relay and the test's own reads (deployment.md's
            # connection budget) need more than the default 100.
            "max_connections": "300",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/{PREFIX_LENGTH} trust\n")

    def start(self) -> None:
        with (self.base / "postgres.log").open("ab") as log:
            self.popen = subprocess.Popen(
                [*NICE, "runuser", "-u", "postgres", "--", "postgres", "-D", str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.tail()}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            time.sleep(0.3)
        raise RuntimeError(f"postgres did not start: {self.tail()}")

    def stop(self, signum: signal.Signals = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown: sessions are ended, the data is consistent."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, OSError, ValueError, IndexError):
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signum)
        try:
            self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def tail(self, chars: int = 2000) -> str:
        path = self.base / "postgres.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@contextlib.contextmanager
def postgres(base: Path) -> Iterator[Postgres]:
    server = Postgres(base)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
