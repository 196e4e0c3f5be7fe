"""The `shoeshop` command ends with one line, not a traceback, when what fails is outside the code:
a data directory (SHOESHOP_DATA_DIR) it cannot make or use, a database it cannot reach. A bug
keeps its traceback. `python -m workers.cli` runs the command too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from config.settings import get_settings
from workers.cli import _Commands

ROOT = Path(__file__).resolve().parents[2]


def _shoeshop(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOESHOP_")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_m_workers_cli_runs_the_command() -> None:
    done = _shoeshop("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: shoeshop ")
    assert "dlq" in done.stdout and "gateway" in done.stdout


@pytest.fixture()
def blocked_data_dir(tmp_path: Path) -> Path:
    """A data directory that cannot be made: a file stands where a folder above it should be."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "var"


@pytest.mark.parametrize("command", [["dlq", "list"], ["gateway", "--port", "0"], ["replay"]])
def test_a_data_directory_that_cannot_be_made_ends_the_command_with_one_line(
    command: list[str], blocked_data_dir: Path
) -> None:
    done = _shoeshop(*command, SHOESHOP_DATA_DIR=str(blocked_data_dir))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    # The directory itself, or the gateway's folder in it, as the command first makes it.
    assert done.stderr.startswith(
        f"shoeshop: cannot use the data directory {blocked_data_dir} (SHOESHOP_DATA_DIR): "
        f"[Errno 20] Not a directory: '{blocked_data_dir}"
    )
    assert done.stderr.count("\n") == 1


def test_the_reviewers_data_directory_under_proc_ends_with_one_line() -> None:
    done = _shoeshop("dlq", "list", SHOESHOP_DATA_DIR="/proc/nope")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "shoeshop: cannot use the data directory /proc/nope (SHOESHOP_DATA_DIR): [Errno "
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_an_unreachable_database_ends_the_command_with_one_line(tmp_path: Path) -> None:
    done = _shoeshop(
        "dlq",
        "list",
        SHOESHOP_DATA_DIR=str(tmp_path / "var"),
        SHOESHOP_DATABASE_URL="postgresql://u@127.0.0.1:1/x",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("shoeshop: cannot use the database: (psycopg.OperationalError) ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# In-process: a group of the same class, with commands that fail as given.


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SHOESHOP_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings().data_dir
    monkeypatch.undo()
    get_settings.cache_clear()


def _group_raising(error: BaseException) -> click.Group:
    @click.group(cls=_Commands)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise error

    return group


@pytest.mark.parametrize(
    "where",
    [
        lambda data_dir: data_dir,
        lambda data_dir: data_dir / "gateway" / "cards.db",
        lambda data_dir: data_dir.parent,  # a folder making the data directory needs
    ],
)
def test_an_os_error_about_the_data_directory_is_one_line(data_dir: Path, where: object) -> None:
    path = where(data_dir)  # type: ignore[operator]
    error = PermissionError(13, "Permission denied", str(path))
    result = CliRunner().invoke(_group_raising(error), ["fail"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"shoeshop: cannot use the data directory {data_dir} (SHOESHOP_DATA_DIR): "
        f"[Errno 13] Permission denied: '{path}'\n"
    )


def test_an_operational_error_shows_its_first_line_only(data_dir: Path) -> None:
    error = OperationalError("SELECT 1", {}, Exception("database is locked\nsecond line"))
    result = CliRunner().invoke(_group_raising(error), ["fail"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == "shoeshop: cannot use the database: (builtins.Exception) database is locked\n"
    )


@pytest.mark.parametrize(
    "error",
    [
        KeyError("order_id"),  # a bug
        OSError(98, "Address already in use"),  # no file at all
        FileNotFoundError(2, "No such file or directory", "/somewhere/else/entirely"),
    ],
)
def test_any_other_error_keeps_its_traceback(data_dir: Path, error: BaseException) -> None:
    result = CliRunner().invoke(_group_raising(error), ["fail"])
    assert result.exception is error
    assert not result.stderr.startswith("shoeshop:")
