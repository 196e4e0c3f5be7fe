"""The outside world of the bed's shop, on a host of its own: the payment gateway simulator and a
mail catcher, listening on that host's address (``shoeshop gateway`` and ``shoeshop
mailcatcher`` listen on 127.0.0.1 only, which no other namespace reaches).

    python -m tests.cluster.services gateway HOST PORT
    python -m tests.cluster.services mail HOST PORT DIRECTORY
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller

from config.settings import get_settings
from workers.gateway.server import serve
from workers.mailcatcher import MAX_MESSAGE_BYTES, Catcher


def gateway(host: str, port: int) -> None:
    settings = get_settings()
    serve(
        port,
        settings.data_dir / "gateway",
        host=host,
        fault_rate=settings.gateway_fault_rate,
        latency_ms=settings.gateway_latency_ms,
    )


def mail(host: str, port: int, directory: Path) -> None:
    controller = Controller(
        Catcher(directory), hostname=host, port=port, data_size_limit=MAX_MESSAGE_BYTES
    )
    controller.start()
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"mail catcher on {host}:{port}", flush=True)
    stopped.wait()
    controller.stop()


def main(argv: list[str]) -> None:
    kind, host, port, *rest = argv
    if kind == "gateway":
        gateway(host, int(port))
    elif kind == "mail":
        mail(host, int(port), Path(rest[0]))
    else:
        raise SystemExit(f"unknown service {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
