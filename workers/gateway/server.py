"""Running the simulator: in the foreground until a signal, or in a thread for tests."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from workers.gateway.app import close_gateway_app, create_gateway_app, ledger_of

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SHUTDOWN_POLL_S = 0.05


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1, so the payments worker's pooled client keeps its connections: werkzeug's
    default (HTTP/1.0) costs a TCP handshake and a new server thread per charge."""

    protocol_version = "HTTP/1.1"


class RunningGateway:
    """A simulator serving from a daemon thread; `stop()` shuts it down and closes its ledger."""

    def __init__(self, app: Flask, server: BaseWSGIServer) -> None:
        self.url = f"http://{server.host}:{server.server_port}"
        self._app = app
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # serve_forever notices shutdown() only between polls; the default 0.5 s makes
            # every stop, and so every test, half a second slower.
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="gateway-simulator",
            daemon=True,
        )
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def allow_refunds(self, charge_id: str) -> None:
        """Lift the refusal of the charge's refunds (cards.REFUND_REFUSED): a test's fault
        control, as an issuer that changes its mind."""
        ledger_of(self._app).allow_refunds(charge_id)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        close_gateway_app(self._app)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    data_dir: Path, *, fault_rate: float = 0.0, latency_ms: int = 0
) -> RunningGateway:
    """Serve on a free port of 127.0.0.1 from a daemon thread; the caller must `stop()` it."""
    return _start("127.0.0.1", 0, data_dir, fault_rate=fault_rate, latency_ms=latency_ms)


def serve(
    port: int,
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    fault_rate: float = 0.0,
    latency_ms: int = 0,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly. Call it from the main thread."""
    stop_requested = threading.Event()
    with _on_signals(_STOP_SIGNALS, stop_requested.set):
        running = _start(host, port, data_dir, fault_rate=fault_rate, latency_ms=latency_ms)
        try:
            log.info("payment gateway simulator listening on %s", running.url)
            # The main thread only waits: a signal handler must not call shutdown() itself,
            # because shutdown() blocks until serve_forever returns.
            stop_requested.wait()
            log.info("payment gateway simulator stopping")
        finally:
            running.stop()


def _start(
    host: str, port: int, data_dir: Path, *, fault_rate: float, latency_ms: int
) -> RunningGateway:
    app = create_gateway_app(data_dir, fault_rate=fault_rate, latency_ms=latency_ms)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=_KeepAliveHandler)
    except BaseException:
        close_gateway_app(app)
        raise
    running = RunningGateway(app, server)
    running.start()
    return running


@contextmanager
def _on_signals(signals: tuple[signal.Signals, ...], action: Callable[[], None]) -> Iterator[None]:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        action()

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
