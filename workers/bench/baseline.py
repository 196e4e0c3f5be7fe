"""The chain baseline's processes: the Procfile's worker layout and web server, on its app."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workers.bench.baseline_app import PREFIX, QUEUES, RECORDS_ENV
from workers.bench.baseline_web import MESSAGES_ENV
from workers.bench.processes import ProcessGroup, procfile_commands
from workers.bench.stack import PROJECT_ROOT, Broker, free_port, stack_env

BASELINE_APP = "workers.bench.baseline_app"
# No chain finished for this long: the rest are lost, not slow (a no-op chain takes milliseconds).
STALL_S = 60.0
BASELINE_WSGI = "'workers.bench.baseline_web:create_app()'"


def baseline_commands(procfile: str) -> dict[str, str]:
    """The Procfile's web and worker lines, pointed at the baseline app and its own queues."""
    return procfile_commands(
        procfile, app=BASELINE_APP, wsgi=BASELINE_WSGI, prefix=PREFIX, queues=QUEUES
    )


Records = dict[str, dict[str, tuple[float, float]]]


def finished(marks: Mapping[str, object]) -> bool:
    """Both marks are there. "done" alone is not enough: the files are read one after another
    while the workers write them, so a read can catch a chain's last hop but miss its earlier
    "shipped" hop, written to another worker's file just after that file was read."""
    return {"shipped", "done"} <= marks.keys()


@dataclass
class BaselineStack:
    """The chain baseline's web server and workers."""

    url: str
    broker: Broker
    records_dir: Path
    group: ProcessGroup = field(repr=False)

    @classmethod
    def start(
        cls, broker: Broker, data_dir: Path, log_dir: Path, messages_per_order: int
    ) -> BaselineStack:
        records = data_dir / "baseline-records"
        records.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = stack_env(broker.url, data_dir)
        env.update({RECORDS_ENV: str(records), MESSAGES_ENV: str(messages_per_order)})
        stack = cls(f"http://127.0.0.1:{port}", broker, records, ProcessGroup("baseline", log_dir))
        procfile = (PROJECT_ROOT / "Procfile").read_text()
        try:
            for name, command in baseline_commands(procfile).items():
                stack.group.spawn(
                    name, command, {**env, "PORT": str(port)} if name == "web" else env
                )
            stack.group.wait_ready(stack.url)
        except BaseException:
            stack.stop()
            raise
        return stack

    def pids(self) -> dict[int, str]:
        return self.group.pids(self.broker, PREFIX)

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

    def wait_shipped(
        self, chain_ids: list[str], timeout_s: float, progress: Callable[[int], None]
    ) -> list[tuple[float, float]]:
        """(started, reached "shipped") of each chain that finished."""
        records = self.wait_done(chain_ids, timeout_s, progress)
        return [records[i]["shipped"] for i in chain_ids if "shipped" in records.get(i, {})]

    def stop(self) -> None:
        self.group.stop()
