"""System fixtures: the real processes of the Procfile, started by `shoeshop up` on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import stack as stacks

STARTUP_TIMEOUT_S = 90
FLOWER_USER = "ops"
FLOWER_PASSWORD = "system-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _live_processes() -> dict[int, int]:
    """pid → parent pid of every live process (zombies are already gone)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, session, ...
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, however deep. Parent links, not sessions: honcho starts
    each Procfile process in a session of its own."""
    children: dict[int, list[int]] = {}
    for pid, parent in _live_processes().items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def still_alive(pids: set[int]) -> set[int]:
    return pids & set(_live_processes())


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class RunningShop:
    process: subprocess.Popen[bytes]
    url: str
    flower_url: str
    gateway_url: str
    log: Path

    def stop(self, timeout_s: float = 60) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout_s)


# Module scope: starting the whole stack costs seconds, so each test module shares one per
# broker; a test that stops the shop (Ctrl-C) comes last in its module.
@pytest.fixture(scope="module", params=["embedded", "services"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stacks.Stack]:
    tmp_path = tmp_path_factory.mktemp(f"system-{request.param}")
    if request.param == "services":
        if reason := stacks.services_missing():
            if stacks.services_required():
                pytest.fail(f"SHOESHOP_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)
        stack = stacks.start_services(tmp_path / "var")
    else:
        # `shoeshop up` starts the embedded Redis itself, as it does on a fresh machine.
        stack = stacks.Stack("embedded", {"SHOESHOP_DATA_DIR": str(tmp_path / "var")})
    yield stack
    stack.close()


DATABASE_PASSWORD = "db-secret-4f1c"
READ_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def running_shop(stack: stacks.Stack) -> Iterator[RunningShop]:
    tmp_path = Path(stack.env["SHOESHOP_DATA_DIR"]).parent
    ports = {name: free_port() for name in ("web", "flower", "gateway", "mail")}
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    env.update(stack.env)
    env.update(SHOESHOP_FLOWER_USER=FLOWER_USER, SHOESHOP_FLOWER_PASSWORD=FLOWER_PASSWORD)
    # A short body deadline, so test_slow_clients_neither_stall_the_shop_nor_stay waits less.
    env["SHOESHOP_READ_TIMEOUT"] = str(READ_TIMEOUT_S)
    if "SHOESHOP_DATABASE_URL" in env:
        # A password in the database's URL (PostgreSQL here trusts local connections and
        # ignores it), which no log line may show: test_no_log_line_shows_a_password.
        env["SHOESHOP_DATABASE_URL"] = env["SHOESHOP_DATABASE_URL"].replace(
            "postgresql://postgres@", f"postgresql://postgres:{DATABASE_PASSWORD}@"
        )
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "shoeshop"),
                "up",
                "--port",
                str(ports["web"]),
                "--flower-port",
                str(ports["flower"]),
                "--gateway-port",
                str(ports["gateway"]),
                "--mail-port",
                str(ports["mail"]),
            ],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    shop = RunningShop(
        process,
        f"http://127.0.0.1:{ports['web']}",
        f"http://127.0.0.1:{ports['flower']}",
        f"http://127.0.0.1:{ports['gateway']}",
        log,
    )
    started: set[int] = set()
    try:
        wait_until_ready(shop)
        started = descendants(process.pid)
        yield shop
    finally:
        started |= descendants(process.pid)
        if process.poll() is None:
            shop.stop()
        for pid in still_alive(started):
            os.kill(pid, signal.SIGKILL)  # only reached when a test already failed


def wait_until_ready(shop: RunningShop) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if shop.process.poll() is not None:
            raise AssertionError(f"shoeshop up exited early:\n{shop.log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{shop.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(
        f"the shop was not ready in {STARTUP_TIMEOUT_S}s:\n{shop.log.read_text()[-4000:]}"
    )
