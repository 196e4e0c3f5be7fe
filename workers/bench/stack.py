"""Starting and stopping what a benchmark runs against: the broker and the shop's processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import kombu.pools
from celery import Celery

from config.settings import QUEUES
from workers.bench import procstat
from workers.launcher import procfile_processes
from workers.messaging.embedded_redis import EmbeddedRedis

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
# The node names of the baselines' workers begin so (baseline_app.PREFIX, naive_app.PREFIX).
BASELINE_NODE_PREFIXES = ("bench_", "naive_")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def executable(name: str) -> str:
    """A console script beside this interpreter, so an unactivated venv works too."""
    return str(Path(sys.executable).parent / name)


@dataclass
class Broker:
    """The broker of a run: an embedded Redis the bench owns, or a URL it was given."""

    url: str
    embedded: EmbeddedRedis | None = None

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> Broker:
        if url:
            return cls(url)
        redis = EmbeddedRedis(data_dir / "redis" / "redis.sock")
        redis.start()
        return cls(redis.url, redis)

    def pids(self) -> dict[int, str]:
        process = self.embedded._process if self.embedded else None
        return {process.pid: "broker"} if process is not None else {}

    def take_away(self) -> None:
        if self.embedded is None:
            raise RuntimeError("only an embedded broker can be taken away by the bench")
        self.embedded.stop()

    def bring_back(self) -> None:
        if self.embedded is not None:
            self.embedded.start()

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def wait_ready(
    url: str, processes: list[subprocess.Popen[bytes]], log: Path, path: str = "/readyz"
) -> None:
    """Until ``url + path`` answers 200; RuntimeError when one of ``processes`` exits first or
    STARTUP_TIMEOUT_S passes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError(f"a process exited during start-up; see {log}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} was not ready within {STARTUP_TIMEOUT_S:.0f}s; see {log}")


def stack_env(broker_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        SHOESHOP_BROKER_URL=broker_url,
        SHOESHOP_DATA_DIR=str(data_dir),
        SHOESHOP_FLOWER_PASSWORD=secrets.token_urlsafe(12),
        # The bench is one client placing orders as fast as the shop takes them: the
        # per-client checkout limit is lifted (CHECKOUT_LIMIT_NOTE says so in every report).
        SHOESHOP_RATE_LIMITS="checkout=off",
    )
    return env


CHECKOUT_LIMIT_NOTE = (
    "the per-client checkout rate limit is lifted (SHOESHOP_RATE_LIMITS=checkout=off)"
)


def scaled_procfile(directory: Path, copies: int) -> Path:
    """The Procfile's and Procfile.dev's processes with each component worker run ``copies``
    times (``orders``, then ``orders-2`` … under node names of their own: ``orders2@%h``),
    written to ``directory/Procfile.scaled``; the copies under ``shoeshop supervise`` as
    ``shoeshop up`` runs the originals (workers.launcher.supervised)."""
    lines = []
    for name, command in procfile_processes(PROJECT_ROOT / "Procfile").items():
        lines.append(f"{name}: {command}")
        if name not in QUEUES:
            continue
        own_node = f"-n {name}@"
        if own_node not in command:
            raise RuntimeError(f"the Procfile's {name} line names no node {own_node}…")
        for copy in range(2, copies + 1):
            renamed = command.replace(own_node, f"-n {name}{copy}@")
            lines.append(f"{name}-{copy}: shoeshop supervise -- {renamed}")
    path = directory / "Procfile.scaled"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class SystemStack:
    """``shoeshop up`` on free ports, in a session of its own so every process can be found."""

    url: str
    broker: Broker
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        broker: Broker,
        data_dir: Path,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        procfile: Path | None = None,
    ) -> SystemStack:
        """``env``: settings beside the run's own (a database URL); ``procfile``: a subset of the
        Procfile's processes (the growth bench runs the web alone)."""
        ports = {name: free_port() for name in ("web", "flower", "gateway", "mail")}
        environ = stack_env(broker.url, data_dir) | (env or {})
        environ["SHOESHOP_GATEWAY_URL"] = f"http://127.0.0.1:{ports['gateway']}"
        out = log.open("wb")
        process = subprocess.Popen(
            [
                executable("shoeshop"),
                "up",
                "--port",
                str(ports["web"]),
                "--flower-port",
                str(ports["flower"]),
                "--gateway-port",
                str(ports["gateway"]),
                "--mail-port",
                str(ports["mail"]),
                *(["--procfile", str(procfile)] if procfile else []),
            ],
            env=environ,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack = cls(f"http://127.0.0.1:{ports['web']}", broker, process, log, out)
        try:
            wait_ready(stack.url, [process], log)
        except BaseException:
            stack.stop()
            raise
        return stack

    def pids(self) -> dict[int, str]:
        found = dict(self.broker.pids())
        if self.process is None:
            return found  # a stack the bench did not start: its processes are not ours to find
        for pid in procstat.descendants(self.process.pid):
            try:
                kind = procstat.classify(procstat.cmdline(pid))
            except OSError:
                continue
            if kind != "shell":
                found[pid] = kind
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        started = _command_lines(procstat.descendants(self.process.pid))
        if self.process.poll() is None:
            # honcho stops everything on SIGTERM as on Ctrl-C, and SIGINT may be ignored when
            # the bench itself runs in the background.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid, argv in _command_lines(list(started)).items():
            # Stragglers of the tree this bench started (only if `up` failed to stop them);
            # the same command line guards against a pid that was reused meanwhile.
            if argv == started[pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()


def _command_lines(pids: list[int]) -> dict[int, list[str]]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = procstat.cmdline(pid)
    return out


def task_totals(broker_url: str, nodes: str | None) -> int:
    """Tasks run so far by the workers whose node names begin with ``nodes`` (a baseline's), or
    with None by the system's (every node no baseline's prefix begins)."""
    for attempt in range(2):
        app = Celery("shoeshop-bench-probe", broker=broker_url)
        try:
            stats = app.control.inspect(timeout=3.0).stats() or {}
            break
        except Exception:
            if attempt:
                raise
            # kombu pools connections per URL across apps: after the backlog phase restarted
            # the broker they are dead. Drop them and ask once more.
            kombu.pools.reset()  # type: ignore[no-untyped-call]
        finally:
            app.close()
    return sum(
        sum(int(count) for count in (node_stats.get("total") or {}).values())
        for node, node_stats in stats.items()
        if (node.startswith(nodes) if nodes else not node.startswith(BASELINE_NODE_PREFIXES))
    )
