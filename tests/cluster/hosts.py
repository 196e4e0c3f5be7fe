"""The shop on the bed's hosts: each Procfile line run inside a host's namespace, reaching the
broker nodes and PostgreSQL over the private link only, and the client host's offered load."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.bed import Host, Link
from tests.support.processes import ROOT, Processes, session_members

# Which host runs which process: a host per web, per worker kind, the relay and beat together,
# and the payment provider and the mail server (the world outside the shop) on one of their own.
LAYOUT: dict[str, tuple[str, ...]] = {
    "web1": ("web",),
    "shop1": ("shop",),
    "orders1": ("orders",),
    "payments1": ("payments",),
    "shipping1": ("shipping",),
    "notifications1": ("notifications",),
    "ops1": ("relay", "beat"),
    "psp": ("gateway", "mail"),
}
CLIENT = "client"
# Second hosts, idle unless a scenario places a process there: a second web, a second host for
# each worker kind and a second relay (two-hosts-per-queue, live-on-two-web-hosts).
TWINS = ("web2", "shop2", "orders2", "payments2", "shipping2", "notifications2", "ops2")
HOSTS = (*LAYOUT, *TWINS, CLIENT)
PORTS = {"web": 8000, "gateway": 8020, "mail": 8025}
SHOP = tuple(process for processes in LAYOUT.values() for process in processes)


@dataclass
class HostedProcesses(Processes):
    """Processes (tests/support/processes.py) whose every line runs on a host of ``link``."""

    link: Link | None = None
    placement: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ports.update(PORTS)
        self.env["SHOESHOP_GATEWAY_URL"] = self.url("gateway")
        self.env["SHOESHOP_SMTP_URL"] = f"smtp://{self.host_of('mail').address}:{PORTS['mail']}"
        python = sys.executable
        self.commands["gateway"] = (
            f"{python} -m tests.cluster.services gateway $SHOESHOP_BIND $PORT"
        )
        mail_dir = Path(self.env["SHOESHOP_DATA_DIR"]) / "mail"
        self.commands["mail"] = (
            f"{python} -m tests.cluster.services mail $SHOESHOP_BIND $PORT {mail_dir}"
        )
        for name in list(self.placement):
            self.place(name, self.placement[name])

    def host_of(self, name: str) -> Host:
        assert self.link is not None
        return self.link[self.placement[name]]

    def place(self, name: str, host: str, line: str | None = None) -> None:
        """Run ``name`` (its Procfile line, or ``line``) on ``host``; a worker's node name gets the
        host's name (``-n payments@payments1``), as %h would on a machine of its own."""
        assert self.link is not None
        self.placement[name] = host
        raw = line or self.commands[name]
        raw = re.sub(r"(-n [\w.-]+)@%h", rf"\1@{host}", raw)
        self.commands[name] = self.link[host].shell(raw)
        self.overrides[name] = {
            **self.overrides.get(name, {}),
            "SHOESHOP_BIND": self.link[host].address,
        }

    def url(self, name: str) -> str:
        return f"http://{self.host_of(name).address}:{self.ports[name]}"


def shop_layout() -> dict[str, str]:
    return {process: host for host, processes in LAYOUT.items() for process in processes}


@dataclass
class Load:
    """The client host's offered load (tests/cluster/load.py) while it runs."""

    popen: subprocess.Popen[bytes]
    output: Path

    @classmethod
    def start(cls, client: Host, url: str, rate: float, output: Path, env: dict[str, str]) -> Load:
        with output.with_suffix(".log").open("ab") as log:
            popen = subprocess.Popen(
                client.argv(
                    sys.executable, "-m", "tests.cluster.load", url, str(rate), str(output)
                ),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return cls(popen, output)

    def stop(self, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Stop offering; wait for the checkouts under way to be answered; every line."""
        for pid in session_members(self.popen.pid):
            signal_process(pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for pid in session_members(self.popen.pid):
                signal_process(pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        return self.lines()

    def lines(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        text = self.output.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def signal_process(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
