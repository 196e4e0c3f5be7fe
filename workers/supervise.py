"""``shoeshop supervise -- COMMAND…``: run a worker, and start it again when it asks to be.

A worker whose consumer stays silent after its watchdog reconnected it exits with
``EXIT_STALLED`` (75, EX_TEMPFAIL: workers.messaging.watchdog) for its supervisor to start it
afresh. ``shoeshop up`` runs each worker line of the Procfile under this, as systemd would with
``Restart=on-failure`` or ``RestartForceExitStatus=75``. Any other exit ends the supervision with
the command's own code (so ``shoeshop up`` stops everything, as it does when a process dies).

The command runs in this process's group: ``shoeshop up`` (honcho) stops a process by signalling
its whole group, so the worker gets SIGTERM for itself and shuts down warm; this process only
notes that it is stopping, waits for the worker, and does not start it again.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

from workers.messaging.watchdog import EXIT_STALLED

log = logging.getLogger(__name__)

# Between an exit that asks for a restart and the restart: a worker that exits at once again
# does not spin.
RESTART_PAUSE_S = 1.0


def supervise(command: Sequence[str], pause_s: float = RESTART_PAUSE_S) -> int:
    """Run ``command`` (an argv list) until it exits otherwise than with EXIT_STALLED, or this
    process is told to stop (SIGTERM, SIGINT); returns its last exit code (a negative number: the
    signal that ended it). Raises OSError when the command cannot be started."""
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            child = subprocess.Popen(list(command))
            code = _wait(child)
            if code != EXIT_STALLED or stopping.is_set():
                return code
            log.warning(
                "%s exited with %d (its consumer stalled): starting it again", command[0], code
            )
            if stopping.wait(pause_s):
                return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait(child: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return child.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries wait() itself
            continue
