"""The Procfile's processes, started one by one so a test can stop, kill and restart any of them."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from workers.celery_worker import starts_a_worker
from workers.launcher import procfile_processes

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "Procfile"
LISTENING = ("web", "gateway", "flower")
# A Celery worker prints this line once it consumes; a cold start on 2 cores takes a few seconds.
WORKER_READY = b" ready."
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ProcessError(AssertionError):
    """A process did not start or stop as expected; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_members(session_id: int) -> list[int]:
    """Every live, non-zombie process whose session id is ``session_id``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@dataclass
class Running:
    """One start of one process: its own session, so a signal reaches all of its children."""

    popen: subprocess.Popen[bytes]
    log_offset: int

    @property
    def session(self) -> int:
        return self.popen.pid

    def members(self) -> list[int]:
        return session_members(self.session)

    def signal(self, signum: signal.Signals) -> None:
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


@dataclass
class Processes:
    """Starts Procfile lines by name with one environment; logs go to ``log_dir/<name>.log``."""

    env: dict[str, str]
    log_dir: Path
    commands: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    running: dict[str, Running] = field(default_factory=dict)
    sessions: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.commands = procfile_processes(PROCFILE)
        self.ports = {name: free_port() for name in LISTENING}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **self.env,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "SHOESHOP_GATEWAY_URL": self.url("gateway"),
        }

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def start(self, name: str, env: dict[str, str] | None = None, *, wait: bool = True) -> None:
        """Start ``name``; ``env`` overrides are kept for later restarts of the same process."""
        if name in self.running and self.running[name].popen.poll() is None:
            raise ProcessError(f"{name} is already running")
        if env:
            self.overrides[name] = {**self.overrides.get(name, {}), **env}
        process_env = {**self.env, **self.overrides.get(name, {})}
        if name in self.ports:
            process_env["PORT"] = str(self.ports[name])
        log = self.log(name)
        offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self.commands[name],
                shell=True,
                start_new_session=True,
                env=process_env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.running[name] = Running(popen, offset)
        self.sessions.append(popen.pid)
        if wait:
            self.wait_ready(name)

    def start_all(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.start(name, wait=False)
        for name in names:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout_s: float = START_TIMEOUT_S) -> None:
        run = self.running[name]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if run.popen.poll() is not None:
                raise ProcessError(f"{name} exited with {run.popen.returncode}:\n{self.tail(name)}")
            if self._ready(name, run):
                return
            time.sleep(0.2)
        raise ProcessError(f"{name} was not ready within {timeout_s}s:\n{self.tail(name)}")

    def _ready(self, name: str, run: Running) -> bool:
        if name in ("web", "gateway"):
            path = "/readyz" if name == "web" else "/healthz"
            try:
                return httpx.get(self.url(name) + path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        if starts_a_worker(shlex.split(self.commands[name])):
            with self.log(name).open("rb") as log:
                log.seek(run.log_offset)
                return WORKER_READY in log.read()
        return True

    def exited(self) -> dict[str, int]:
        """Processes that were started and are not running any more: name -> exit code."""
        return {
            name: code
            for name, run in self.running.items()
            if (code := run.popen.poll()) is not None
        }

    def stop(self, name: str, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, as an orchestrator would; a worker finishes its current tasks first."""
        run = self.running.pop(name)
        run.signal(signal.SIGTERM)
        self._reap(name, run, timeout_s)

    def kill(self, name: str) -> None:
        """SIGKILL every process of ``name``'s session at once: no chance to clean up."""
        run = self.running.pop(name)
        run.signal(signal.SIGKILL)
        self._reap(name, run, 10)

    def restart(self, name: str, env: dict[str, str] | None = None) -> None:
        if name in self.running:
            self.stop(name)
        self.start(name, env)

    def _reap(self, name: str, run: Running, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while run.members() and time.monotonic() < deadline:
            time.sleep(0.1)
        if run.members():
            run.signal(signal.SIGKILL)
            time.sleep(0.2)
        try:
            run.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise ProcessError(f"{name} did not exit:\n{self.tail(name)}") from None

    def close(self) -> list[int]:
        """Stop everything still running; return the pids that had to be killed afterwards."""
        runs = [(name, self.running.pop(name)) for name in list(self.running)]
        for _name, run in runs:
            run.signal(signal.SIGTERM)  # all at once: each worker's warm shutdown overlaps
        for name, run in runs:
            with contextlib.suppress(ProcessError):
                self._reap(name, run, 15)
        leftovers = [pid for session in self.sessions for pid in session_members(session)]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


def seed_catalogue(env: dict[str, str]) -> None:
    """Migrate every database (as a deployment does first), then seed the shop's catalogue once,
    before gunicorn forks its two workers.

    The seeding works around a start-up race (see docs/reliability.md): on a fresh PostgreSQL
    database both web workers seed the catalogue at once, one fails on the primary key, and
    gunicorn stops. Raises ProcessError with the command's output when either step fails.
    """
    for command in (
        [str(Path(sys.executable).parent / "shoeshop"), "db", "upgrade"],
        [sys.executable, "-c", "from shop import create_app; create_app()"],
    ):
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise ProcessError(done.stdout.decode() + done.stderr.decode())
