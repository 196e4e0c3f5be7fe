"""``shoeshop supervise [--heartbeat PATH [--stale-after SECONDS]] -- COMMAND…``: run a process,
and start it again when it asks to be or, watched by a heartbeat, when it hangs or dies.

A worker whose consumer stays silent after its watchdog reconnected it exits with
``EXIT_STALLED`` (75, EX_TEMPFAIL: workers.messaging.watchdog) for its supervisor to start it
afresh. ``shoeshop up`` runs each worker line of the Procfile under this, as systemd would with
``Restart=on-failure`` or ``RestartForceExitStatus=75``. Any other exit ends the supervision with
the command's own code (so ``shoeshop up`` stops everything, as it does when a process dies).

``--heartbeat PATH`` watches a command that has no watchdog of its own (the relay: ``shoeshop
up`` runs it this way). The command is given the path as SHOESHOP_HEARTBEAT_FILE and touches the
file on each pass of its loop (workers.operations.relay). When the file has not changed for
``--stale-after`` seconds (DEFAULT_STALE_AFTER_S), the command is hung: stopped (SIGSTOP), or
stuck in a call that never returns. It is killed with SIGKILL, which a stopped process cannot
ignore either, and started again once it is gone, so two of them never overlap. A command that
dies of a signal (SIGKILL, the kernel's OOM killer, a crash) is started again too; one that exits
with a code of its own (a refusal to start, say) ends the supervision as above. The change of
the file is timed on this process's monotonic clock, not by comparing its mtime with the time of
day, so a clock that jumps kills nothing.

The command runs in this process's group: ``shoeshop up`` (honcho) stops a process by signalling
its whole group, so the worker gets SIGTERM for itself and shuts down warm; this process only
notes that it is stopping, waits for the worker, and does not start it again.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

log = logging.getLogger(__name__)

# What a worker whose watchdog gave up exits with (workers.messaging.watchdog.EXIT_STALLED, held
# equal by tests/unit/test_cli_lazy.py). Not imported from there: the watchdog loads Celery, and
# this process, one beside every worker, needs none of it.
EXIT_STALLED = os.EX_TEMPFAIL

# Between an exit that asks for a restart and the restart: a worker that exits at once again
# does not spin.
RESTART_PAUSE_S = 1.0
# A pass of the relay takes milliseconds; the slowest legitimate one waits for a SQLite write
# lock (30 s at most, workers.messaging.database) or a broker that is away (the relay then fails
# fast and beats again within 2 s). A minute of silence is a hang, and a kill is harmless: what
# the relay had not marked published is published again, and applied once.
DEFAULT_STALE_AFTER_S = 60.0
# Before its first beat a command is starting (imports, every database's revision checked): a
# cold start on a busy two-core machine takes seconds, so it gets at least this long.
STARTUP_ALLOWANCE_S = 60.0
# --stale-after's bounds: a second at least (the relay beats every half second when idle); a
# day at most (click checks them: workers.cli).
STALE_AFTER_BOUNDS_S = (1.0, 86400.0)
# How often the heartbeat is looked at, at most: several looks within every --stale-after.
LOOK_EVERY_S = 1.0
HEARTBEAT_ENV = "SHOESHOP_HEARTBEAT_FILE"


@dataclass(frozen=True)
class Heartbeat:
    """The file a supervised command touches while it works, and how long it may stay untouched
    (seconds) before the command counts as hung; ``startup_s``: the same before its first beat,
    at least."""

    path: Path
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    startup_s: float = STARTUP_ALLOWANCE_S

    @property
    def look_every_s(self) -> float:
        return min(LOOK_EVERY_S, self.stale_after_s / 4)


def _stamp(path: Path) -> int | None:
    """The file's modification time in nanoseconds; None while there is none to read (no file
    yet, or one this process may not look at: the command then never beats, and says why)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class HeartbeatWatch:
    """One run of a command, watched: when its heartbeat file last changed, on the monotonic
    clock whose reading each call is given (``now``, seconds)."""

    def __init__(self, heartbeat: Heartbeat, now: float) -> None:
        self.heartbeat = heartbeat
        self._stamp = _stamp(heartbeat.path)  # a file left by an earlier run is no beat
        self._changed_at = now
        self.beating = False

    def silent_for(self, now: float) -> float:
        """Seconds since the file last changed (or since the run began, before any change)."""
        stamp = _stamp(self.heartbeat.path)
        if stamp != self._stamp:
            self._stamp, self._changed_at, self.beating = stamp, now, True
        return now - self._changed_at

    @property
    def allowed_s(self) -> float:
        """How long the command may be silent: ``stale_after_s``, or ``startup_s`` when that is
        longer until its first beat."""
        if self.beating:
            return self.heartbeat.stale_after_s
        return max(self.heartbeat.stale_after_s, self.heartbeat.startup_s)

    def stale(self, now: float) -> bool:
        """Whether the command has been silent for longer than it may be."""
        return self.silent_for(now) > self.allowed_s


def watched_by(path: str | None, stale_after_s: float | None) -> Heartbeat | None:
    """The heartbeat ``shoeshop supervise --heartbeat PATH [--stale-after SECONDS]`` asks for
    (None without --heartbeat). Raises click.UsageError for --stale-after without --heartbeat,
    and click.BadParameter for a path that names a directory or a --stale-after that is no
    number (NaN, which click's range lets through)."""
    if stale_after_s is not None and not math.isfinite(stale_after_s):
        raise click.BadParameter(f"must be a number of seconds, not {stale_after_s}")
    if path is None:
        if stale_after_s is not None:
            raise click.UsageError("--stale-after needs --heartbeat")
        return None
    if not path.strip() or path.endswith(("/", os.sep)) or Path(path).is_dir():
        raise click.BadParameter(f"must name a file, not the directory {path!r}")
    return Heartbeat(Path(path).resolve(), stale_after_s or DEFAULT_STALE_AFTER_S)


def supervise(
    command: Sequence[str], pause_s: float = RESTART_PAUSE_S, heartbeat: Heartbeat | None = None
) -> int:
    """Run ``command`` (an argv list) until it exits otherwise than with EXIT_STALLED (or, with
    a ``heartbeat``, by a signal), or this process is told to stop (SIGTERM, SIGINT); returns its
    last exit code (a negative number: the signal that ended it). Raises OSError when the
    command cannot be started."""
    if heartbeat is not None:
        heartbeat.path.parent.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            code = _run_once(command, heartbeat, stopping)
            if stopping.is_set() or not _restarts(code, heartbeat):
                return code
            log.warning("%s: starting it again", _why(command, code))
            if stopping.wait(pause_s):
                return code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _restarts(code: int, heartbeat: Heartbeat | None) -> bool:
    """EXIT_STALLED always; a death by a signal (a negative code) when watched by a heartbeat:
    a hung command killed for it, or one that died."""
    return code == EXIT_STALLED or (heartbeat is not None and code < 0)


def _why(command: Sequence[str], code: int) -> str:
    if code == EXIT_STALLED:
        return f"{command[0]} exited with {code} (its consumer stalled)"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return f"{shlex.join(command)} ended by signal {name}"


def _run_once(
    command: Sequence[str], heartbeat: Heartbeat | None, stopping: threading.Event
) -> int:
    if heartbeat is None:
        return _wait(subprocess.Popen(list(command)))
    env = {**os.environ, HEARTBEAT_ENV: str(heartbeat.path)}
    watch = HeartbeatWatch(heartbeat, time.monotonic())
    child = subprocess.Popen(list(command), env=env)
    return _watch(child, shlex.join(command), watch, time.monotonic)


def _watch(
    child: subprocess.Popen[bytes], name: str, watch: HeartbeatWatch, clock: Callable[[], float]
) -> int:
    """Wait for ``child``, killing it once its heartbeat is stale (also while this process is
    stopping: a stopped command does not act on the SIGTERM it was sent); its exit code."""
    while True:
        try:
            return child.wait(timeout=watch.heartbeat.look_every_s)
        except subprocess.TimeoutExpired:
            pass
        now = clock()
        if watch.stale(now):
            log.error(
                "%s: heartbeat %s untouched for %.1fs (allowed %gs): killing it (SIGKILL)",
                name,
                watch.heartbeat.path,
                watch.silent_for(now),
                watch.allowed_s,
            )
            child.kill()
            return _wait(child)


def _wait(child: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return child.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries wait() itself
            continue
