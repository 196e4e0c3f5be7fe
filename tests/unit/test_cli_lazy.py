"""The ``shoeshop`` command loads a group of subcommands only when one of them runs: the
processes `shoeshop up` keeps beside every worker (``supervise``) stay small."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from workers.cli import LAZY_COMMANDS, main

SUPERVISE_TRUE_THEN_MODULES = """
import json, sys
from workers.cli import main
try:
    main(["supervise", "--", "true"])
except SystemExit as done:
    assert done.code == 0, done.code
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_supervise_runs_without_sqlalchemy_alembic_celery_or_the_bench() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SUPERVISE_TRUE_THEN_MODULES],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert "click" in loaded
    assert loaded.isdisjoint({"sqlalchemy", "alembic", "celery", "kombu", "httpx"}), loaded


def test_every_lazy_group_is_listed_and_loads() -> None:
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0, listed.output
    for name in LAZY_COMMANDS:
        assert f"  {name} " in listed.output, name
        shown = CliRunner().invoke(main, [name, "--help"])
        assert shown.exit_code == 0, (name, shown.output)
        assert f"Usage: main {name}" in shown.output or f"Usage: shoeshop {name}" in shown.output


def test_a_command_that_does_not_exist_is_refused() -> None:
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2
    assert "No such command 'nope'" in result.output


def test_the_supervisor_restarts_on_the_code_a_stalled_worker_exits_with() -> None:
    from workers.messaging import watchdog
    from workers.supervise import EXIT_STALLED

    assert EXIT_STALLED == watchdog.EXIT_STALLED == 75
