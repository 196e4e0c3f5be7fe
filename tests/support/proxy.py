"""A TCP proxy in front of the broker that can silence the connections it carries: the fault of
a NAT or firewall that forgot a flow, or a half-open connection, where nothing is closed and
nothing more arrives. New connections after ``silence`` are carried as usual."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

BUFFER = 65536


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    silent: threading.Event = field(default_factory=threading.Event)


class SilencingProxy:
    """Listens on 127.0.0.1 (``port``) and carries each connection to ``upstream``: a
    ``(host, port)`` or a unix socket's path."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def silence(self) -> int:
        """Stop carrying anything on every connection open now, either way, without closing
        any; returns how many were silenced."""
        with self._lock:
            for pair in self._pairs:
                pair.silent.set()
            return len(self._pairs)

    def drop_silenced(self) -> None:
        """Close both ends of every silenced connection, as the network does in the end (a
        reset, a timeout): the broker then takes back what it had handed over them."""
        with self._lock:
            for pair in self._pairs:
                if pair.silent.is_set():
                    for sock in (pair.client, pair.upstream):
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                for sock in (pair.client, pair.upstream):
                    with contextlib.suppress(OSError):
                        sock.close()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.upstream)
            return sock
        return socket.create_connection(self.upstream)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = self._connect_upstream()
            except OSError:
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._carry, args=(pair,), daemon=True).start()

    def _carry(self, pair: _Pair) -> None:
        ends = {pair.client: pair.upstream, pair.upstream: pair.client}
        while not self._closed.is_set():
            if pair.silent.is_set():
                self._closed.wait(0.5)  # held open, carrying nothing, until the proxy closes
                continue
            try:
                readable, _, _ = select.select(list(ends), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(BUFFER)
                    if not data:
                        raise OSError("closed")
                    if pair.silent.is_set():
                        break  # silenced meanwhile: what was read is dropped, as a lost flow's
                    ends[sock].sendall(data)
            except OSError:
                break
        for sock in ends:
            with contextlib.suppress(OSError):
                sock.close()


def through(proxy: SilencingProxy, broker_url: str) -> str:
    """``broker_url`` (the tests' embedded Redis on a unix socket, or RabbitMQ) pointed at the
    proxy instead."""
    parts = urlsplit(broker_url)
    if parts.scheme == "redis+socket":
        return f"redis://127.0.0.1:{proxy.port}/0"
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def upstream_of(broker_url: str) -> tuple[str, int] | str:
    """Where ``broker_url`` connects: a unix socket's path, or (host, port)."""
    parts = urlsplit(broker_url)
    if parts.scheme == "redis+socket":
        return parts.path
    return (parts.hostname or "127.0.0.1", parts.port or 5672)
