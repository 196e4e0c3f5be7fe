"""The baseline's processes: the Procfile's worker layout and web server, on the baseline app."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from honcho.environ import parse_procfile

from workers.bench import procstat
from workers.bench.baseline_app import PREFIX, QUEUES, RECORDS_ENV
from workers.bench.baseline_web import MESSAGES_ENV
from workers.bench.stack import (
    PROJECT_ROOT,
    STOP_TIMEOUT_S,
    Broker,
    free_port,
    stack_env,
    wait_ready,
)

BASELINE_APP = "workers.bench.baseline_app"
# No chain finished for this long: the rest are lost, not slow (a no-op chain takes milliseconds).
STALL_S = 60.0
BASELINE_WSGI = "'workers.bench.baseline_web:create_app()'"


def baseline_commands(procfile: str) -> dict[str, str]:
    """The Procfile's web and worker lines, pointed at the baseline app and its own queues.

    Pool, concurrency, prefetch, task events and gunicorn's workers and threads stay as written,
    so the baseline runs in exactly the system's layout.
    """
    out: dict[str, str] = {}
    for name, command in parse_procfile(procfile).processes.items():
        if name == "web":
            # The shop's gunicorn hooks serve its metrics; the bare endpoint has none.
            command = re.sub(r"--config[ =]python:shop\.\S+\s*", "", command)
            out[name] = re.sub(r"'?shop(?:\.web\.app)?:create_app\(\)'?", BASELINE_WSGI, command)
        elif name in QUEUES and "-A config.celery_process worker" in command:
            command = command.replace("-A config.celery_process", f"-A {BASELINE_APP}")
            command = re.sub(r"-Q (\w+)", rf"-Q {PREFIX}\1", command)
            out[PREFIX + name] = re.sub(r"-n (\w+)@", rf"-n {PREFIX}\1@", command)
    missing = {"web", *(PREFIX + queue for queue in QUEUES)} - set(out)
    if missing:
        raise RuntimeError(f"the Procfile has no line for {sorted(missing)}")
    return out


Records = dict[str, dict[str, tuple[float, float]]]


def finished(marks: Mapping[str, object]) -> bool:
    """Both marks are there. "done" alone is not enough: the files are read one after another
    while the workers write them, so a read can catch a chain's last hop but miss its earlier
    "shipped" hop, written to another worker's file just after that file was read."""
    return {"shipped", "done"} <= marks.keys()


@dataclass
class BaselineStack:
    """The baseline's web server and workers, each in a session of its own."""

    url: str
    broker: Broker
    records_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    @classmethod
    def start(
        cls, broker: Broker, data_dir: Path, log_dir: Path, messages_per_order: int
    ) -> BaselineStack:
        records = data_dir / "baseline-records"
        records.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = stack_env(broker.url, data_dir)
        env.update({RECORDS_ENV: str(records), MESSAGES_ENV: str(messages_per_order)})
        stack = cls(f"http://127.0.0.1:{port}", broker, records)
        procfile = (PROJECT_ROOT / "Procfile").read_text()
        try:
            for name, command in baseline_commands(procfile).items():
                log = (log_dir / f"baseline-{name}.log").open("wb")
                stack._logs.append(log)
                stack.processes[name] = subprocess.Popen(
                    ["/bin/sh", "-c", f"exec {command}"],
                    env={**env, "PORT": str(port)} if name == "web" else env,
                    cwd=PROJECT_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            wait_ready(stack.url, list(stack.processes.values()), log_dir)
        except BaseException:
            stack.stop()
            raise
        return stack

    def pids(self) -> dict[int, str]:
        found = dict(self.broker.pids())
        for name, process in self.processes.items():
            kind = name.removeprefix(PREFIX)
            for pid in procstat.descendants(process.pid):
                found[pid] = kind
        return found

    def records(self) -> Records:
        """chain id → mark (``shipped``, ``done``) → (started, reached), epoch seconds."""
        out: Records = {}
        for path in self.records_dir.glob("records-*.txt"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 4:
                    chain_id, mark, started, reached = parts
                    out.setdefault(chain_id, {})[mark] = (float(started), float(reached))
        return out

    def wait_done(
        self, chain_ids: list[str], timeout_s: float, progress: Callable[[int], None]
    ) -> Records:
        """Poll the records until every chain reached its end (or the time is up)."""
        deadline = time.monotonic() + timeout_s
        wanted = set(chain_ids)
        seen = 0
        progressed = time.monotonic()
        while True:
            records = self.records()
            done = sum(1 for chain_id in wanted if finished(records.get(chain_id, {})))
            if done > seen:
                progress(done - seen)
                seen, progressed = done, time.monotonic()
            now = time.monotonic()
            if done == len(wanted) or now > deadline or now > progressed + STALL_S:
                return records
            time.sleep(0.5)

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
