"""The consumer watchdog's verdicts (workers.messaging.watchdog.Watch) over a run of looks, and
``shoeshop supervise`` starting a worker again when, and only when, it exits with 75."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.messaging.watchdog import EXIT, EXIT_STALLED, RECONNECT, Watch, shut_down
from workers.supervise import supervise

WINDOW = 60.0


def looks(watch: Watch, rows: list[tuple[float, int | None, int, bool]]) -> list[str | None]:
    return [watch.observe(now, ready, received, free) for now, ready, received, free in rows]


def when(rows: list[tuple[float, int | None, int, bool]], verdicts: list[str | None]) -> dict:
    return {verdict: row[0] for row, verdict in zip(rows, verdicts, strict=True) if verdict}


def test_messages_waiting_a_window_while_none_is_received_reconnect_then_exit() -> None:
    # The first look finds 7 received since the start; from the second on, nothing more.
    watch = Watch(window_s=WINDOW)
    rows = [(t, 3, 7, True) for t in range(0, 130, 5)]

    verdicts = looks(watch, rows)

    assert [v for v in verdicts if v] == [RECONNECT, EXIT]
    assert when(rows, verdicts) == {RECONNECT: 65, EXIT: 125}


def test_a_message_received_after_the_reconnection_starts_over() -> None:
    watch = Watch(window_s=WINDOW)
    stalled = looks(watch, [(t, 3, 7, True) for t in range(0, 70, 5)])
    healed = looks(watch, [(70, 3, 8, True)])  # it took one: the reconnection worked
    again = looks(watch, [(t, 3, 8, True) for t in range(75, 140, 5)])

    assert stalled[-1] == RECONNECT and healed == [None]
    assert [v for v in again if v] == [RECONNECT]  # a new stall, not the exit


@pytest.mark.parametrize(
    "why",
    ["an empty queue", "no free slot", "the broker did not say", "messages received"],
)
def test_no_verdict_while_the_worker_is_busy_idle_or_taking(why: str) -> None:
    watch = Watch(window_s=WINDOW)
    rows = {
        "an empty queue": [(t, 0, 7, True) for t in range(0, 300, 5)],
        "no free slot": [(t, 9, 7, False) for t in range(0, 300, 5)],
        "the broker did not say": [(t, None, 7, True) for t in range(0, 300, 5)],
        "messages received": [(t, 9, t, True) for t in range(0, 300, 5)],
    }[why]

    assert not any(looks(watch, rows))


def test_one_busy_look_restarts_the_window() -> None:
    watch = Watch(window_s=WINDOW)
    rows = [(t, 3, 7, t != 55) for t in range(0, 150, 5)]  # all slots taken once, at 55 s

    verdicts = looks(watch, rows)

    assert when(rows, verdicts)[RECONNECT] == 60 + WINDOW  # a window after the next quiet look


def test_a_shut_down_socket_wakes_its_reader_to_an_end_of_stream() -> None:
    import socket
    import threading

    left, right = socket.socketpair()
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(left.recv(10)))
    reader.start()
    shut_down([left])
    reader.join(timeout=5)

    assert read == [b""]
    left.close()
    right.close()


def script(tmp_path: Path, body: str, name: str = "child.py") -> list[str]:
    path = tmp_path / name
    path.write_text(body)
    return [sys.executable, str(path)]


def test_a_command_that_exits_75_is_started_again_and_its_next_code_returned(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    command = script(
        tmp_path,
        f"import pathlib, sys\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        f"runs.write_text(runs.read_text() + 'x' if runs.exists() else 'x')\n"
        f"sys.exit({EXIT_STALLED} if len(runs.read_text()) < 3 else 4)\n",
    )

    assert supervise(command, pause_s=0.01) == 4
    assert runs.read_text() == "xxx"


def test_a_stopped_supervision_does_not_start_the_command_again(tmp_path: Path) -> None:
    # As shoeshop up stops a process: SIGTERM to its whole group. The child exits 75 on it.
    child = script(
        tmp_path,
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: sys.exit({EXIT_STALLED}))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n",
    )
    runner = script(
        tmp_path,
        "import sys\nfrom workers.supervise import supervise\n"
        f"sys.exit(supervise({child!r}, pause_s=0.01))\n",
        name="runner.py",
    )
    started = subprocess.Popen(
        runner,
        start_new_session=True,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert started.stdout is not None
    assert started.stdout.readline().strip() == b"ready"
    began = time.monotonic()
    os.killpg(started.pid, signal.SIGTERM)

    assert started.wait(timeout=30) == EXIT_STALLED
    assert time.monotonic() - began < 10
    with started.stdout:
        assert started.stdout.read() == b""  # no second start
