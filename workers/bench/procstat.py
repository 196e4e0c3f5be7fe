"""CPU seconds and peak memory of a set of processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workers import celery_worker

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Often enough to catch a short peak, rarely enough to cost nothing next to the stack.
SAMPLE_INTERVAL_S = 0.5


def _stat_fields(pid: int) -> list[str]:
    # The command name may hold spaces and parentheses: split after its last ')'.
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = _stat_fields(pid)
    # After the name: state(0) ppid(1) ... utime(11) stime(12), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kb(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in kB from /proc/<pid>/status (VmRSS, VmHWM)."""
    current = peak = 0
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    return current, max(current, peak)


def cmdline(pid: int) -> list[str]:
    raw = (PROC / str(pid) / "cmdline").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def descendants(root: int) -> list[int]:
    """``root`` and every live, non-zombie process below it.

    The process tree, not the session: honcho gives each Procfile process a session of its own.
    """
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


_QUEUE = re.compile(r"^-Q$|^--queues$")


def classify(argv: list[str]) -> str:
    """The process kind a command line belongs to: web, a worker's queue, relay, broker, ..."""
    text = " ".join(argv)
    if argv[:2] == ["/bin/sh", "-c"]:
        return "shell"  # honcho's shell around each Procfile line: it only waits
    if "gunicorn" in text:
        return "web"
    if "redis-server" in text:
        return "broker"
    if "beam.smp" in text:
        return "broker"
    if " flower" in text:
        return "flower"
    if " beat" in text:
        return "beat"
    if celery_worker.starts_a_worker(argv):
        for index, arg in enumerate(argv):
            if _QUEUE.match(arg) and index + 1 < len(argv):
                return argv[index + 1]
        return "worker"
    for kind in ("relay", "gateway", "up"):
        if f"shoeshop {kind}" in text or text.endswith(f"shoeshop {kind}"):
            return "launcher" if kind == "up" else kind
    return Path(argv[0]).name if argv else "unknown"


@dataclass
class ProcessUsage:
    """CPU and memory of a group of processes between ``start`` and ``stop``."""

    find_pids: Callable[[], Mapping[int, str]]
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    peak_kb: dict[int, int] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    excluded: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(first=False)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample(first=False)

    def _sample(self, *, first: bool) -> None:
        for pid, kind in self.find_pids().items():
            try:
                used = cpu_seconds(pid)
                _, peak = rss_kb(pid)
            except (OSError, IndexError, ValueError):
                continue  # it ended between listing and reading
            self.kinds[pid] = kind
            # A process that appears mid-phase (a restarted worker) counts from zero.
            self.cpu_start.setdefault(pid, used if first else 0.0)
            self.cpu_last[pid] = used
            self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), peak)

    def exclude(self, kind: str, seconds: float) -> None:
        """Take CPU the benchmark itself caused (its own reads) out of a kind's account."""
        self.excluded[kind] = self.excluded.get(kind, 0.0) + max(0.0, seconds)

    def cpu_by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {kind: -value for kind, value in self.excluded.items()}
        for pid, last in self.cpu_last.items():
            kind = self.kinds[pid]
            out[kind] = out.get(kind, 0.0) + last - self.cpu_start.get(pid, 0.0)
        return {kind: round(value, 3) for kind, value in sorted(out.items())}

    def peak_rss_mb_by_kind(self) -> dict[str, float]:
        """The largest peak RSS of any one process of each kind, in MB."""
        out: dict[str, float] = {}
        for pid, peak in self.peak_kb.items():
            kind = self.kinds[pid]
            out[kind] = max(out.get(kind, 0.0), round(peak / 1024, 1))
        return dict(sorted(out.items()))
