"""A baseline's processes: the Procfile's web and worker lines pointed at the baseline's app."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from honcho.environ import parse_procfile

from workers import celery_worker
from workers.bench import procstat
from workers.bench.stack import PROJECT_ROOT, STOP_TIMEOUT_S, Broker, wait_ready

# How the Procfile starts a component's worker.
SYSTEM_WORKER = f"{celery_worker.COMMAND} "


def procfile_commands(
    procfile: str, *, app: str, wsgi: str, prefix: str, queues: Sequence[str]
) -> dict[str, str]:
    """The Procfile's web line serving ``wsgi`` and its lines for ``queues``' workers, pointed at
    the Celery ``app`` and its queues and node names (``prefix`` + queue).

    Pool, concurrency, prefetch, task events and gunicorn's workers and threads stay as written,
    so a baseline runs in exactly the system's layout. Its workers start from the ``celery``
    command, with the plugins it loads (Flower's, click-repl): memory the system's workers do
    without (workers.celery_worker), CPU per order neither side spends.
    """
    out: dict[str, str] = {}
    for name, command in parse_procfile(procfile).processes.items():
        if name == "web":
            # The shop's gunicorn hooks serve its metrics; a baseline's endpoint has none.
            command = re.sub(r"--config[ =]python:shop\.\S+\s*", "", command)
            out[name] = re.sub(r"'?shop(?:\.web\.app)?:create_app\(\)'?", wsgi, command)
        elif name in queues and command.startswith(SYSTEM_WORKER):
            # A baseline's worker starts as a Celery tutorial starts one: the celery command.
            command = f"celery -A {app} worker " + command.removeprefix(SYSTEM_WORKER)
            command = re.sub(r"-Q (\w+)", rf"-Q {prefix}\1", command)
            out[prefix + name] = re.sub(r"-n (\w+)@", rf"-n {prefix}\1@", command)
    missing = {"web", *(prefix + queue for queue in queues)} - set(out)
    if missing:
        raise RuntimeError(f"the Procfile has no line for {sorted(missing)}")
    return out


@dataclass
class ProcessGroup:
    """Processes a bench started, each in a session of its own, logged to ``<side>-<name>.log``."""

    side: str
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    def spawn(self, name: str, command: str, env: Mapping[str, str]) -> None:
        log = (self.log_dir / f"{self.side}-{name}.log").open("wb")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"],
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, url: str) -> None:
        wait_ready(url, list(self.processes.values()), self.log_dir)

    def pids(self, broker: Broker, prefix: str) -> dict[int, str]:
        """Every process of the group, by kind (a worker's kind is its queue's, as the system's
        are), with the broker's."""
        found = dict(broker.pids())
        for name, process in self.processes.items():
            kind = name.removeprefix(prefix)
            for pid in procstat.descendants(process.pid):
                found[pid] = kind
        return found

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # warm shutdown, like Ctrl-C
        for process in self.processes.values():
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for log in self._logs:
            log.close()
