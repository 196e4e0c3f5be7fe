"""gunicorn's log lines off the gevent loop (shop.web.log_thread), with a real pipe nobody reads.

A child process patched by gevent logs 5,000 lines of 212 bytes to its stdout, a pipe this test
does not read until the child has said, on stderr, how often a greenlet of its own ran meanwhile.
Written on the loop, the first full 64 KiB stop the whole process (the control: no report comes);
written off it, the greenlet keeps running, and once the pipe is read every line is there in
order, or counted in a "dropped" line, and none is lost without a word.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import sys
import textwrap

from tests.support.processes import ROOT

LINES = 5_000
NOTICE = re.compile(r"log lines dropped: (\d+) \(the log's reader fell behind\)")
LIMIT = 1_000

CHILD = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import logging, sys, time
    import gevent
    from shop.web.log_thread import move_off_loop, stop_all

    log = logging.getLogger("access")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler(sys.stdout))
    moved = move_off_loop([log], limit={limit}) if sys.argv[1] == "off" else []
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    gevent.spawn(ticker)
    gevent.sleep(0.05)
    for number in range({lines}):
        log.info("line %06d %s", number, "x" * 200)
    before = len(ticks)
    gevent.sleep(0.5)
    sys.stderr.write(f"ticks {{len(ticks) - before}}\\n")
    sys.stderr.flush()
    sys.stdin.readline()
    gevent.sleep(1.0)  # the pipe is read now: the queue empties before the last line
    log.info("after")
    stop_all(moved)
    """
).format(limit=LIMIT, lines=LINES)


def _child(mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _stderr_line(child: subprocess.Popen[bytes], timeout: float) -> str | None:
    assert child.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stderr, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return child.stderr.readline().decode()


def _finish(child: subprocess.Popen[bytes]) -> list[str]:
    out, err = child.communicate(b"go\n", timeout=60)
    assert child.returncode == 0, err.decode()
    return out.decode().splitlines()


def test_lines_written_on_the_loop_stop_the_process_when_the_pipe_is_full() -> None:
    """The control: without the thread, nothing else in the process runs while the pipe is full."""
    child = _child("on")
    try:
        assert _stderr_line(child, timeout=3.0) is None
    finally:
        lines = _finish(child)
    assert len(lines) == LINES + 1


def test_lines_written_off_the_loop_let_the_process_run_and_lose_nothing_unsaid() -> None:
    child = _child("off")
    try:
        report = _stderr_line(child, timeout=20.0)
    finally:
        lines = _finish(child)
    assert report is not None, "the process stopped while its stdout was full"
    ticks = int(report.split()[1])
    assert ticks >= 20, f"the loop ran {ticks} times in 0.5 s while the pipe was full"

    # Read in order, each line is the one after the last, or a notice of how many were dropped
    # in between stands where they would have been (there can be more than one gap, as the writer
    # frees room while lines still come).
    expected = written = dropped = 0
    for line in lines[:-1]:
        if notice := NOTICE.fullmatch(line):
            expected += int(notice.group(1))
            dropped += int(notice.group(1))
            continue
        number = re.match(r"line (\d{6}) ", line)
        assert number is not None, line
        assert int(number.group(1)) == expected, "a line out of order, or missing without a notice"
        expected += 1
        written += 1
    assert expected == LINES, "lines at the end missing without a notice"
    assert dropped > 0, "the pipe and the queue held every line: the bound was not reached"
    assert written <= LIMIT + 1_000, "more lines were kept than the queue and the pipe hold"
    assert lines[-1] == "after"


STOP_BLOCKED = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import logging, sys, time
    from shop.web.log_thread import move_off_loop, stop_all

    log = logging.getLogger("access")
    log.propagate = False
    log.addHandler(logging.StreamHandler(sys.stdout))
    # The queue alone (1,000 lines, 213 KB) is more than the pipe holds (64 KiB): the writer
    # blocks however late its thread starts.
    moved = move_off_loop([log], limit=1_000)
    for number in range(2_000):
        log.warning("line %06d %s", number, "x" * 200)
    started = time.monotonic()
    stop_all(moved, seconds=1.0)
    sys.stderr.write(f"stopped after {time.monotonic() - started:.2f}\\n")
    sys.stderr.flush()
    """
)


def test_a_worker_stops_on_time_though_its_log_reader_has_stopped() -> None:
    """worker_exit's stop_all returns at its deadline, without raising, while the writer is still
    blocked on a full pipe (gunicorn then exports the spans and exits)."""
    child = subprocess.Popen(
        [sys.executable, "-c", STOP_BLOCKED],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        report = _stderr_line(child, timeout=20.0)
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert report is not None and report.startswith("stopped after "), report
    assert 0.9 <= float(report.split()[2]) < 3.0, report
