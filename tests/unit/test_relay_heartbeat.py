"""A relay that dies or hangs is started again (issue #19): the relay touches a heartbeat file on
each pass of its loop, and ``shoeshop supervise --heartbeat`` kills a command whose file stays
untouched too long and starts it again, as it does one that died of a signal."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from celery import Celery
from click.testing import CliRunner

from config.settings import ConfigurationError, Settings
from workers import cli
from workers.cli import supervise as supervise_command
from workers.launcher import supervised
from workers.operations import relay
from workers.supervise import (
    DEFAULT_STALE_AFTER_S,
    HEARTBEAT_ENV,
    STALE_AFTER_BOUNDS_S,
    Heartbeat,
    HeartbeatWatch,
    supervise,
    watched_by,
)

# --- the watch: when the file last changed, on the clock it is given ---


def touch(path: Path, mtime_s: float) -> None:
    path.touch()
    os.utime(path, (mtime_s, mtime_s))


def test_a_heartbeat_touched_within_its_window_is_not_stale(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    watch = HeartbeatWatch(Heartbeat(beat, stale_after_s=10, startup_s=0), now=100.0)

    touch(beat, 1_000)
    assert not watch.stale(now=105.0)
    touch(beat, 1_001)

    assert not watch.stale(now=114.0)  # nine seconds after the last change it saw


def test_a_heartbeat_untouched_past_its_window_is_stale(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    watch = HeartbeatWatch(Heartbeat(beat, stale_after_s=10, startup_s=0), now=100.0)
    touch(beat, 1_000)
    assert not watch.stale(now=101.0)

    assert watch.stale(now=111.5)
    assert watch.silent_for(now=111.5) == pytest.approx(10.5)


def test_a_command_that_has_not_beaten_yet_gets_its_startup_allowance(tmp_path: Path) -> None:
    watch = HeartbeatWatch(Heartbeat(tmp_path / "beat", stale_after_s=5, startup_s=30), now=0.0)

    assert not watch.stale(now=29.0)
    assert watch.stale(now=31.0)


def test_a_file_an_earlier_run_left_is_no_beat(tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    touch(beat, 1_000)  # the killed run's last beat
    watch = HeartbeatWatch(Heartbeat(beat, stale_after_s=5, startup_s=30), now=0.0)

    assert not watch.stale(now=20.0)
    assert not watch.beating


def test_any_change_of_the_file_is_a_beat_even_to_an_earlier_time(tmp_path: Path) -> None:
    # Timed on the supervisor's clock: a file time set back (a clock that jumped) still beats.
    beat = tmp_path / "beat"
    touch(beat, 1_000_000)
    watch = HeartbeatWatch(Heartbeat(beat, stale_after_s=5, startup_s=0), now=0.0)

    touch(beat, 10)

    assert not watch.stale(now=4.0)
    assert watch.beating


# --- the options, as `shoeshop supervise` reads them (click) ---


def options(args: list[str]) -> tuple[Heartbeat | None, tuple[str, ...]]:
    """The heartbeat and the command `shoeshop supervise ARGS` would run."""
    context = supervise_command.make_context("supervise", list(args))
    params = context.params
    return watched_by(params["heartbeat"], params["stale_after"]), params["command"]


def test_the_heartbeat_options_come_before_the_command(tmp_path: Path) -> None:
    path = str(tmp_path / "relay.heartbeat")

    heartbeat, command = options(
        ["--heartbeat", path, "--stale-after=7.5", "--", "shoeshop", "relay", "--stale-after", "1"]
    )

    assert heartbeat == Heartbeat(Path(path), 7.5)
    assert command == ("shoeshop", "relay", "--stale-after", "1")


def test_a_heartbeat_without_stale_after_waits_the_default_minute() -> None:
    heartbeat, command = options(["--heartbeat=relative/beat", "shoeshop", "relay"])

    assert heartbeat is not None and heartbeat.stale_after_s == DEFAULT_STALE_AFTER_S == 60
    assert heartbeat.path == Path("relative/beat").resolve()
    assert command == ("shoeshop", "relay")


def test_a_command_without_options_is_run_as_it_is() -> None:
    assert options(["celery", "worker", "--heartbeat", "x"]) == (
        None,
        ("celery", "worker", "--heartbeat", "x"),
    )


def test_the_cli_s_bounds_are_the_supervisor_s() -> None:
    assert (cli.DEFAULT_STALE_AFTER_S, cli.STALE_AFTER_BOUNDS_S) == (
        DEFAULT_STALE_AFTER_S,
        STALE_AFTER_BOUNDS_S,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--stale-after", "5", "--", "shoeshop", "relay"], "--stale-after needs --heartbeat"),
        (["--heartbeat", "b", "--stale-after", "0.5", "x"], "1.0<=x<=86400.0"),
        (["--heartbeat", "b", "--stale-after", "nan", "x"], "not nan"),
        (["--heartbeat", "b", "--stale-after", "ten", "x"], "'ten' is not a valid float"),
        (["--heartbeat", "dir/", "x"], "must name a file"),
        (["--heartbeat"], "requires an argument"),
        (["--heartbeat", "b", "--"], "Missing argument 'COMMAND"),
    ],
)
def test_options_it_cannot_read_are_a_usage_error_naming_them(args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli.main, ["supervise", *args])
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_shoeshop_up_runs_the_relay_under_a_heartbeat_in_the_data_directory(
    tmp_path: Path,
) -> None:
    line = supervised({"relay": "shoeshop relay", "beat": "celery beat"})
    prefix, _, command = line["relay"].partition(" -- ")
    assert prefix.startswith("shoeshop supervise ") and command == "shoeshop relay"
    assert line["beat"] == "celery beat"
    # The options as the shell honcho runs the line hands them on.
    given = subprocess.run(
        ["sh", "-c", f"printf '%s\\n' {prefix.removeprefix('shoeshop supervise ')}"],
        env={"SHOESHOP_DATA_DIR": str(tmp_path / "data dir")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    heartbeat, _ = options([*given, "--", "shoeshop", "relay"])

    assert heartbeat == Heartbeat(tmp_path / "data dir" / "relay.heartbeat", DEFAULT_STALE_AFTER_S)


# --- the supervisor, with real child processes ---


def child(tmp_path: Path, body: str) -> list[str]:
    """A Python child that appends a line to ``runs`` each time it starts; ``body`` then sees
    ``run`` (1 for the first start) and ``beat`` (its heartbeat file, from the environment)."""
    script = tmp_path / "child.py"
    script.write_text(
        "import os, pathlib, signal, sys, time\n"
        f"runs = pathlib.Path({str(tmp_path / 'runs')!r})\n"
        "with runs.open('a') as out:\n"
        "    out.write('x\\n')\n"
        "run = len(runs.read_text().splitlines())\n"
        f"beat = pathlib.Path(os.environ.get({HEARTBEAT_ENV!r}, '/nonexistent'))\n" + body
    )
    return [sys.executable, str(script)]


def runs(tmp_path: Path) -> int:
    return len((tmp_path / "runs").read_text().splitlines())


def test_a_command_that_stops_beating_is_killed_and_started_again(tmp_path: Path) -> None:
    # The first run beats, then stops itself (SIGSTOP: a hung relay); the second exits 4.
    command = child(
        tmp_path,
        "if run == 1:\n    beat.touch()\n    os.kill(os.getpid(), signal.SIGSTOP)\nsys.exit(4)\n",
    )
    beat = tmp_path / "relay.heartbeat"
    began = time.monotonic()

    code = supervise(command, 0.01, heartbeat=Heartbeat(beat, stale_after_s=1))

    assert code == 4
    assert runs(tmp_path) == 2
    assert time.monotonic() - began < 20


def test_a_command_that_never_beats_is_killed_after_its_startup_allowance(
    tmp_path: Path,
) -> None:
    command = child(tmp_path, "if run == 1:\n    time.sleep(60)\nsys.exit(4)\n")
    watch = Heartbeat(tmp_path / "beat", stale_after_s=1, startup_s=2)
    began = time.monotonic()

    assert supervise(command, 0.01, heartbeat=watch) == 4
    assert runs(tmp_path) == 2
    assert 2 <= time.monotonic() - began < 20


def test_a_watched_command_that_dies_of_a_signal_is_started_again(tmp_path: Path) -> None:
    command = child(
        tmp_path, "if run == 1:\n    os.kill(os.getpid(), signal.SIGKILL)\nsys.exit(4)\n"
    )

    code = supervise(command, 0.01, heartbeat=Heartbeat(tmp_path / "beat"))

    assert code == 4
    assert runs(tmp_path) == 2


def test_a_watched_command_that_exits_with_a_code_of_its_own_is_not_started_again(
    tmp_path: Path,
) -> None:
    command = child(tmp_path, "sys.exit(1)\n")  # a relay refusing to start, say

    assert supervise(command, 0.01, heartbeat=Heartbeat(tmp_path / "beat")) == 1
    assert runs(tmp_path) == 1


def test_without_a_heartbeat_a_command_killed_by_a_signal_ends_the_supervision(
    tmp_path: Path,
) -> None:
    # A worker's supervision is unchanged: only its watchdog's 75 starts it again.
    command = child(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)\n")

    assert supervise(command, 0.01) == -9
    assert runs(tmp_path) == 1


def test_the_command_is_told_where_its_heartbeat_is(tmp_path: Path) -> None:
    told = tmp_path / "told"
    command = child(tmp_path, f"pathlib.Path({str(told)!r}).write_text(str(beat))\n")
    beat = tmp_path / "nested" / "relay.heartbeat"

    assert supervise(command, 0.01, heartbeat=Heartbeat(beat)) == 0
    assert told.read_text() == str(beat)
    assert beat.parent.is_dir()  # made for it


# --- the relay's side: a beat as each pass begins ---


def test_the_relay_touches_its_heartbeat_on_every_pass_failed_ones_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "FAILURE_INTERVAL_S", 0.05)
    beat = tmp_path / "relay.heartbeat"
    stop = threading.Event()
    seen: list[int] = []

    def chore() -> int:
        seen.append(beat.stat().st_mtime_ns)
        if len(seen) == 3:
            stop.set()
        raise ConnectionError("broker away")  # every pass fails

    relay.run(Celery("unused"), stop, components=(), chores=[chore], heartbeat=beat)

    assert len(seen) == 3
    assert len(set(seen)) == 3  # touched anew as each pass began


def test_the_relay_s_heartbeat_file_is_a_setting_refused_when_it_names_no_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.heartbeat"

    assert Settings.from_env({}).heartbeat_file is None
    assert Settings.from_env({"SHOESHOP_HEARTBEAT_FILE": str(path)}).heartbeat_file == path
    for wrong in (" ", f"{tmp_path}/"):
        with pytest.raises(ConfigurationError, match="SHOESHOP_HEARTBEAT_FILE must be"):
            Settings.from_env({"SHOESHOP_HEARTBEAT_FILE": wrong})
