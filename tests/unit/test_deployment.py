"""The production deployment's files (issue #18): a systemd unit for every line of the Procfile,
each checked by `systemd-analyze verify`, and the Procfile holding production's processes only
(the simulator and the mail catcher are Procfile.dev's, which `shoeshop up` adds)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from config.settings import QUEUES
from workers.launcher import DEV_PROCFILE, broker_api_of, procfile_processes

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED_AT = "/opt/shoeshop"  # where the units expect the project (and its .venv)


def procfile(name: str = "Procfile") -> dict[str, str]:
    return dict(parse_procfile((ROOT / name).read_text()).processes)


def unit_of(process: str) -> str:
    return (
        f"shoeshop-worker@{process}.service" if process in QUEUES else f"shoeshop-{process}.service"
    )


def exec_start(unit: str) -> list[str]:
    """The unit's ExecStart as argv (continuation lines joined), templates' %i filled in."""
    name, _, instance = unit.partition("@")
    path = UNITS / (f"{name}@.service" if instance else unit)
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(path.read_text().replace("\\\n", " "))
    queue = instance.removesuffix(".service")
    return shlex.split(parser["Service"]["ExecStart"].replace("%i", queue))


def test_the_procfile_is_production_s_and_procfile_dev_adds_the_simulator_and_catcher() -> None:
    assert set(procfile()) == {"web", *QUEUES, "relay", "beat", "flower"}
    assert set(procfile(DEV_PROCFILE)) == {"gateway", "mail"}
    assert set(procfile_processes(ROOT / "Procfile")) == {*procfile(), "gateway", "mail"}


def test_gunicorn_takes_its_worker_count_from_web_concurrency() -> None:
    assert "--workers ${WEB_CONCURRENCY:-2}" in procfile()["web"]


def test_every_procfile_line_has_a_unit_running_the_same_program() -> None:
    for process, command in procfile().items():
        argv = exec_start(unit_of(process))
        line = shlex.split(command)
        program = Path(argv[0])
        assert program.parent == Path(INSTALLED_AT) / ".venv" / "bin", process
        wanted = line[0] if line[0] != "env" else "celery"  # flower's line sets its login first
        assert program.name == wanted, (process, argv)
    worker = exec_start("shoeshop-worker@payments.service")
    assert worker[1:5] == ["-Q", "payments", "-n", "payments@%%h"]
    assert {"-E", "--pool", "threads"} <= set(worker)
    relay = exec_start("shoeshop-relay.service")
    assert relay[1:3] == ["supervise", "--heartbeat"] and relay[-1] == "relay"
    web = exec_start("shoeshop-web.service")
    assert {"--worker-class", "gevent", "${WEB_CONCURRENCY}"} <= set(web)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_every_unit_without_a_warning(tmp_path: Path) -> None:
    # Installed where this checkout is, so that verify finds each ExecStart's program.
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(INSTALLED_AT, str(ROOT))
        (tmp_path / unit.name).write_text(text)
    names = [unit_of(process) for process in procfile()] + ["shoeshop.target"]
    verified = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "" and verified.stdout == "", verified.stderr + verified.stdout


@pytest.mark.parametrize(
    ("broker", "api"),
    [
        ("amqp://shop:s3cret@rabbit-1:5672/shoeshop", "http://shop:s3cret@rabbit-1:15672/api/"),
        ("amqps://shop:pw@r1:5671/v;amqps://shop:pw@r2:5671/v", "https://shop:pw@r1:15671/api/"),
        ("pyamqp://guest@127.0.0.1//", "http://guest@127.0.0.1:15672/api/"),
        ("redis://127.0.0.1:6379/0", None),
        ("redis+socket:///tmp/redis.sock", None),
    ],
)
def test_flower_is_given_rabbitmq_s_management_api_for_the_broker_s_queues(
    broker: str, api: str | None
) -> None:
    assert broker_api_of(broker) == api
