"""Three RabbitMQ nodes of the test's own, clustered: rabbit-c1@localhost, c2 and c3.

Each runs as the ``rabbitmq`` user with its own config file, enabled-plugins file (management
on), mnesia, log and home (cookie) directories, AMQP listener on the link's root address and
distribution on 127.0.0.1, all registered with an epmd of the bed's own (port 4371), so the
machine's node (rabbit@localhost, 5672, epmd 4369, /etc/rabbitmq) is never read or reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.bed import NICE, ROOT_ADDRESS
from tests.support.processes import session_members

SCRIPTS = Path("/usr/lib/rabbitmq/bin")
EPMD_PORT = 4371
NODES = 3
VHOST = "shoeshop"
USER = "chaos"
START_TIMEOUT_S = 120.0


def _cookie() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(32))


@dataclass
class Node:
    index: int
    base: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"rabbit-c{self.index}@localhost"

    @property
    def port(self) -> int:
        return 5680 + self.index

    @property
    def dist_port(self) -> int:
        return 25680 + self.index

    @property
    def management_port(self) -> int:
        return 15680 + self.index

    def running(self) -> bool:
        return self.popen is not None and bool(session_members(self.popen.pid))

    def log(self) -> Path:
        return self.base / "stdout.log"

    def tail(self, chars: int = 3000) -> str:
        path = self.log()
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


@dataclass
class Cluster:
    """The three nodes, the CLI to reach them, and the vhost and user the shop connects with."""

    base: Path
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    cookie: str = field(default_factory=_cookie)
    nodes: list[Node] = field(default_factory=list)
    epmd: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.nodes = [Node(i, self.base / f"c{i}") for i in range(1, NODES + 1)]

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def url(self, vhost: str = VHOST, order: list[Node] | None = None) -> str:
        """kombu's failover list: every node, in ``order`` (the nodes' own by default)."""
        return ";".join(
            f"amqp://{USER}:{self.password}@{ROOT_ADDRESS}:{node.port}/{vhost}"
            for node in (order or self.nodes)
        )

    # -- the CLI ----------------------------------------------------------------------------

    def ctl(
        self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a CLI tool against ``node`` with the bed's cookie (a HOME of its own) and epmd."""
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(self.base / "cli"),
            "ERL_EPMD_PORT": str(EPMD_PORT),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
        }
        return subprocess.run(
            [str(SCRIPTS / tool), "-q", "-n", node.name, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def any_running(self) -> Node:
        return next(node for node in self.nodes if node.running())

    def leaders(self, vhost: str = VHOST) -> dict[str, str]:
        """Each quorum queue of ``vhost`` and the node leading it."""
        out = self.ctl(
            self.any_running(), "list_queues", "-p", vhost, "name", "type", "leader",
            "--formatter", "json",
        ).stdout  # fmt: skip
        return {q["name"]: q["leader"] for q in json.loads(out) if q.get("type") == "quorum"}

    def members(self, vhost: str = VHOST) -> dict[str, list[str]]:
        out = self.ctl(
            self.any_running(), "list_queues", "-p", vhost, "name", "members",
            "--formatter", "json",
        ).stdout  # fmt: skip
        return {q["name"]: q["members"] for q in json.loads(out) if q.get("members")}

    def running_nodes(self) -> list[str]:
        out = self.ctl(
            self.any_running(), "cluster_status", "--formatter", "json", tool="rabbitmq-diagnostics"
        ).stdout
        return sorted(json.loads(out)["running_nodes"])

    # -- nodes ------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.base.mkdir(parents=True)
        self.base.chmod(0o755)
        (self.base / "rabbitmq-env.conf").write_text("# the bed's nodes read no /etc/rabbitmq\n")
        cli = self.base / "cli"
        cli.mkdir(mode=0o700)
        (cli / ".erlang.cookie").write_text(self.cookie)
        (cli / ".erlang.cookie").chmod(0o400)
        for node in self.nodes:
            _prepare_node(node, self.cookie)

    def start_epmd(self) -> None:
        with (self.base / "epmd.log").open("ab") as log:
            self.epmd = subprocess.Popen(
                [*NICE, "runuser", "-u", "rabbitmq", "--", "epmd", "-port", str(EPMD_PORT),
                 "-address", "127.0.0.1"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def start(self, node: Node, *, wait: bool = True) -> None:
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(node.base / "home"),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.base / "log"),
            "RABBITMQ_PID_FILE": str(node.base / "pid"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            # Distribution between the nodes stays on the loopback.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(EPMD_PORT),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        argv = [f"{key}={value}" for key, value in env.items()]
        with node.log().open("ab") as log:
            node.popen = subprocess.Popen(
                [*NICE, "runuser", "-u", "rabbitmq", "--", "env", "-i", *argv,
                 str(SCRIPTS / "rabbitmq-server")],
                cwd=node.base,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_running(node)

    def wait_running(self, node: Node, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if node.popen is None or node.popen.poll() is not None:
                raise RuntimeError(f"{node.name} exited:\n{node.tail()}")
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self.ctl(node, "check_running", tool="rabbitmq-diagnostics", timeout=30)
                return
            time.sleep(1)
        raise RuntimeError(f"{node.name} did not start within {timeout_s}s:\n{node.tail()}")

    def kill(self, node: Node) -> None:
        """SIGKILL every process of the node at once (the VM and its port programs)."""
        assert node.popen is not None
        for pid in session_members(node.popen.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.popen.wait(timeout=30)

    def stop(self, node: Node) -> None:
        """A clean stop (rabbitmqctl stop); SIGKILL if it does not end within a minute."""
        if not node.running():
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.ctl(node, "stop", timeout=60)
        assert node.popen is not None
        deadline = time.monotonic() + 60
        while node.running() and time.monotonic() < deadline:
            time.sleep(0.5)
        if node.running():
            self.kill(node)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.popen.wait(timeout=10)

    def wait_safe_to_stop(self, node: Node, timeout_s: float = 120) -> float:
        """Wait until stopping ``node`` would leave every quorum queue a majority
        (``rabbitmq-queues check_if_node_is_quorum_critical``, the rolling-upgrade check);
        the seconds waited."""
        started = time.monotonic()
        while True:
            try:
                self.ctl(node, "check_if_node_is_quorum_critical", tool="rabbitmq-queues")
                return time.monotonic() - started
            except subprocess.CalledProcessError:
                if time.monotonic() - started > timeout_s:
                    raise
                time.sleep(1)

    def form(self) -> None:
        """c1 alone, then c2 and c3 join it; then the vhost and the shop's user."""
        first, *others = self.nodes
        for node in self.nodes:
            self.start(node, wait=False)
        for node in self.nodes:
            self.wait_running(node)
        for node in others:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name, timeout=120)
            self.ctl(node, "start_app", timeout=120)
        self.ctl(first, "add_user", USER, self.password)
        self.ctl(first, "set_user_tags", USER, "administrator")
        self.add_vhost(VHOST)
        running = self.running_nodes()
        if running != sorted(node.name for node in self.nodes):
            raise RuntimeError(f"the cluster runs {running}, not all three nodes")

    def add_vhost(self, vhost: str) -> None:
        first = self.any_running()
        self.ctl(first, "add_vhost", vhost)
        self.ctl(first, "set_permissions", "-p", vhost, USER, ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.ctl(self.any_running(), "delete_vhost", vhost, timeout=120)

    def close(self) -> None:
        for node in self.nodes:
            self.stop(node)
        if self.epmd is not None:
            for pid in session_members(self.epmd.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.epmd.wait(timeout=10)


def _prepare_node(node: Node, cookie: str) -> None:
    for sub in ("home", "mnesia", "log"):
        (node.base / sub).mkdir(parents=True)
    cookie_file = node.base / "home" / ".erlang.cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o400)
    (node.base / "rabbitmq.conf").write_text(
        "\n".join(
            [
                f"listeners.tcp.1 = {ROOT_ADDRESS}:{node.port}",
                f"management.tcp.ip = {ROOT_ADDRESS}",
                f"management.tcp.port = {node.management_port}",
                # A quorum queue's leader is placed on the node its declaring client is
                # connected to: a scenario places leaders by declaring through one node.
                "queue_leader_locator = client-local",
                "log.console = false",
                "log.file.level = info",
                "",
            ]
        )
    )
    (node.base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    for path in [node.base, *node.base.rglob("*")]:
        shutil.chown(path, "rabbitmq", "rabbitmq")


@contextlib.contextmanager
def cluster(base: Path) -> Iterator[Cluster]:
    nodes = Cluster(base)
    try:
        nodes.prepare()
        nodes.start_epmd()
        nodes.form()
        yield nodes
    finally:
        nodes.close()
        shutil.rmtree(base, ignore_errors=True)
