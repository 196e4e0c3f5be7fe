"""The local mail catcher (development and tests only): an SMTP server that keeps what it is sent
in a Maildir instead of delivering it, so `make run` shows the whole experience with no mail
server. The server is aiosmtpd's (aio-libs, maintained; the standard library's smtpd is gone
since Python 3.12); the mailbox is the standard library's Maildir, which the admin pages read.

Like a real mail system it drops a message whose Message-ID it already holds: a redelivered
event's mail, re-sent with the same Message-ID, is kept once (``Catcher.deliveries`` counts
every SMTP transaction, ``Catcher.kept`` the messages stored).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"  # development only: never reachable from another machine
# A mail of the shop's is a few kilobytes; anything past this is refused with 552.
MAX_MESSAGE_BYTES = 1_000_000


@dataclass
class Catcher:
    """Keeps accepted messages in ``directory`` (a Maildir), each Message-ID once."""

    directory: Path
    deliveries: int = 0
    _ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Maildir makes its own folder, not the data directory above it (absent on PostgreSQL).
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.mailbox = mailbox.Maildir(self.directory, create=True)
        self._ids = {str(message["Message-ID"]) for message in self.mailbox}

    @property
    def kept(self) -> int:
        return len(self._ids)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a message's content: keep it unless its Message-ID is kept."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message_id = str(message["Message-ID"] or "")
        with self._lock:
            self.deliveries += 1
            if message_id and message_id in self._ids:
                return "250 Already have it"
            self.mailbox.add(envelope.content)
            if message_id:
                self._ids.add(message_id)
        return "250 Message accepted for delivery"


@dataclass
class RunningCatcher:
    catcher: Catcher
    controller: Controller

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.controller.port}"

    def stop(self) -> None:
        self.controller.stop()


def start_in_thread(directory: Path, port: int = 0) -> RunningCatcher:
    """Serve a Catcher of ``directory`` on 127.0.0.1:``port`` (0: a free one) from a thread of
    this process."""
    return serve(Catcher(directory), port)


def serve(catcher: Catcher, port: int = 0) -> RunningCatcher:
    """Serve ``catcher`` (a subclass, in tests) on 127.0.0.1:``port`` (0: a free one)."""
    if port == 0:
        port = _free_port()
    controller = Controller(
        catcher, hostname=HOST, port=port, data_size_limit=MAX_MESSAGE_BYTES, ready_timeout=10
    )
    controller.start()
    return RunningCatcher(catcher, controller)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
