"""Running the Procfile's processes together, as ``honcho start`` would, for ``shoeshop up``."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import click
from honcho.environ import parse_procfile
from honcho.manager import Manager

from config.settings import DEFAULT_FLOWER_USER, QUEUES, Settings, masked_url
from workers.messaging.embedded_redis import EmbeddedRedis

# The relay's heartbeat file, under the data directory (the shell that runs the line expands it,
# as the Procfile's beat line does); untouched for workers.supervise.DEFAULT_STALE_AFTER_S (a
# minute), the relay is killed and started again.
RELAY_WATCH = '--heartbeat "${SHOESHOP_DATA_DIR:-var}/relay.heartbeat"'


# Beside the Procfile (the production list): the processes development adds to it, the payment
# gateway simulator and the local mail catcher. `shoeshop up` runs both files' lines.
DEV_PROCFILE = "Procfile.dev"


def procfile_processes(procfile: Path) -> dict[str, str]:
    """The processes of ``procfile`` and, when there is one beside it, of its Procfile.dev
    (``{name: command}``; a name in both is the Procfile.dev's). Raises OSError when
    ``procfile`` cannot be read, ValueError for a line honcho cannot parse."""
    processes = dict(parse_procfile(procfile.read_text()).processes)
    dev = procfile.with_name(DEV_PROCFILE)
    if dev.is_file():
        processes.update(parse_procfile(dev.read_text()).processes)
    return processes


# RabbitMQ's management plugin listens here by default (15671 with TLS).
MANAGEMENT_PORTS = {"amqp": 15672, "pyamqp": 15672, "amqps": 15671}


def broker_api_of(broker_url: str) -> str | None:
    """The management API URL Flower reads the broker's queues from (its FLOWER_BROKER_API),
    derived from the first URL of ``broker_url`` (kombu's ``;``-separated failover list) on
    RabbitMQ: same user, password and host, the management plugin's default port; None for
    Redis, which has no such API."""
    first = urlparse(broker_url.split(";", 1)[0].strip())
    port = MANAGEMENT_PORTS.get(first.scheme)
    if port is None or not first.hostname:
        return None
    scheme = "https" if first.scheme == "amqps" else "http"
    login = first.netloc.rpartition("@")[0]
    host = f"[{first.hostname}]" if ":" in first.hostname else first.hostname
    return f"{scheme}://{login + '@' if login else ''}{host}:{port}/api/"


def supervised(processes: dict[str, str]) -> dict[str, str]:
    """The Procfile's processes with each component worker (a line named after its queue) run
    under ``shoeshop supervise``, which starts it again when its watchdog gives up on a silent
    consumer (exit 75), as a supervisor would; and the relay under ``shoeshop supervise
    --heartbeat``, which starts it again when it dies or hangs (its heartbeat file untouched for
    a minute)."""
    wrapped = {}
    for name, command in processes.items():
        if name in QUEUES:
            command = f"shoeshop supervise -- {command}"
        elif name == "relay":
            command = f"shoeshop supervise {RELAY_WATCH} -- {command}"
        wrapped[name] = command
    return wrapped


@dataclass
class Launcher:
    settings: Settings
    procfile: Path
    ports: dict[str, int]

    def run(self) -> int:
        """Start everything, block until Ctrl-C (or a process dies), stop everything."""
        redis: EmbeddedRedis | None = None
        env = dict(os.environ)
        # The Procfile names celery, gunicorn and shoeshop: find them beside this interpreter
        # even when the virtual environment was never activated.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["SHOESHOP_DATA_DIR"] = str(self.settings.data_dir)
        if self.settings.embedded_broker:
            redis = EmbeddedRedis(self.settings.redis_socket)
            redis.start()
            env["SHOESHOP_BROKER_URL"] = redis.url
        if "SHOESHOP_GATEWAY_URL" in env:
            self.ports["gateway"] = (
                urlparse(env["SHOESHOP_GATEWAY_URL"]).port or self.ports["gateway"]
            )
        else:
            env["SHOESHOP_GATEWAY_URL"] = f"http://127.0.0.1:{self.ports['gateway']}"
        processes = supervised(procfile_processes(self.procfile))
        catching = not env.get("SHOESHOP_SMTP_URL") and "mail" in processes
        if catching:
            # No mail server named: the shop's mails go to the local catcher (/admin/mail).
            env["SHOESHOP_SMTP_URL"] = f"smtp://127.0.0.1:{self.ports['mail']}"
        else:
            processes.pop("mail", None)  # a mail server is named: nothing to catch
        if not env.get("SHOESHOP_PUBLIC_URL"):
            env["SHOESHOP_PUBLIC_URL"] = f"http://127.0.0.1:{self.ports['web']}"
        broker_api = broker_api_of(env.get("SHOESHOP_BROKER_URL", ""))
        if broker_api and not env.get("FLOWER_BROKER_API"):
            # Flower's broker page shows RabbitMQ's queues through the management plugin.
            env["FLOWER_BROKER_API"] = broker_api
        user, password, generated = flower_credentials(self.settings.is_production, self.settings)
        env["SHOESHOP_FLOWER_USER"], env["SHOESHOP_FLOWER_PASSWORD"] = user, password
        try:
            manager = Manager()
            for name, command in processes.items():
                process_env = dict(env)
                if name in self.ports:
                    process_env["PORT"] = str(self.ports[name])
                manager.add_process(name, command, env=process_env, cwd=str(self.procfile.parent))
            self._announce(env, user, password if generated else None, catching)
            manager.loop()
            return int(manager.returncode or 0)
        finally:
            if redis is not None:
                redis.stop()

    def _announce(
        self, env: dict[str, str], user: str, password: str | None, catching: bool
    ) -> None:
        # A password in a URL is shown as *** (kombu may list several brokers, ";" apart).
        broker = ";".join(masked_url(url) for url in env.get("SHOESHOP_BROKER_URL", "").split(";"))
        databases = (
            masked_url(self.settings.database_url)
            if self.settings.database_url
            else f"SQLite files under {self.settings.data_dir}"
        )
        lines = [
            f"Shop       http://127.0.0.1:{self.ports['web']}",
            f"Flower     http://127.0.0.1:{self.ports['flower']}  (user {user!r}"
            + (
                f", password {password!r})"
                if password
                else ", password from SHOESHOP_FLOWER_PASSWORD)"
            ),
            f"Gateway    {env['SHOESHOP_GATEWAY_URL']}  (simulator)",
            _mail_line(env.get("SHOESHOP_SMTP_URL"), catching, self.ports["web"]),
            f"Broker     {broker}"
            + ("  (embedded Redis)" if self.settings.embedded_broker else ""),
            f"Databases  {databases}",
            "Press Ctrl-C to stop everything.",
        ]
        click.echo("\n".join(lines), err=False)


def _mail_line(smtp_url: str | None, catching: bool, web_port: int) -> str:
    """The banner's line about mail: caught locally, sent through a server, or not sent (a
    Procfile without the catcher's line, and no SHOESHOP_SMTP_URL: no notifications worker can
    start then, and says so)."""
    if smtp_url is None:
        return "Mail       not sent: SHOESHOP_SMTP_URL is unset and no mail catcher runs"
    if catching:
        return f"Mail       caught on {smtp_url}, shown at http://127.0.0.1:{web_port}/admin/mail"
    return f"Mail       sent through {masked_url(smtp_url)}"


def flower_credentials(production: bool, settings: Settings | None = None) -> tuple[str, str, bool]:
    """(user, password, generated): development gets a fresh password, printed at start;
    production must be given one, so Flower is never open or guarded by a guessable default.
    The user and password are the ones Settings checked (read from the environment when no
    settings are given): printable ASCII that Flower's basic auth reads as one login."""
    checked = Settings.from_env() if settings is None else settings
    user = DEFAULT_FLOWER_USER if checked.flower_user is None else checked.flower_user
    password = checked.flower_password
    if password is not None:
        return user, password, False
    if production:
        raise click.ClickException(
            "SHOESHOP_FLOWER_PASSWORD must be set when SHOESHOP_ENV=production"
        )
    return user, secrets.token_urlsafe(12), True
