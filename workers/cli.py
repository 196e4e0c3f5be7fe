"""The ``shoeshop`` command: run the whole stack, the gateway simulator, the relay."""

from __future__ import annotations

import importlib
import logging
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import click

from config.settings import COMPONENTS, ConfigurationError, get_settings

# The supervisor's bounds, copied here so the CLI loads no more than click to show its help;
# tests/unit/test_relay_heartbeat.py holds them to workers.supervise's.
DEFAULT_STALE_AFTER_S = 60.0
STALE_AFTER_BOUNDS_S = (1.0, 86400.0)

DEFAULT_PORT = 8000
DEFAULT_FLOWER_PORT = 5555
DEFAULT_GATEWAY_PORT = 8020
DEFAULT_MAIL_PORT = 8025
# How often the relay looks in RabbitMQ's dead-letter queue: it opens a connection each time.
BROKER_DRAIN_INTERVAL_S = 5.0
# How often the relay compares outboxes with inboxes (workers.operations.redelivery).
REDELIVERY_INTERVAL_S = 15.0
# How often the relay prunes the outboxes and inboxes (workers.operations.retention).
RETENTION_INTERVAL_S = 60.0


class _Failure(click.ClickException):
    """A command that could not do its work for a reason outside the code: one line,
    ``shoeshop: <what failed>: <the error's first line>``, and exit status 1."""

    def __init__(self, what: str, error: BaseException) -> None:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        super().__init__(f"{what}: {first_line}")

    def show(self, file: Any = None) -> None:
        click.echo(f"shoeshop: {self.format_message()}", err=True)


class _Commands(click.Group):
    """The command group; a setting out of its range, or a database this code cannot use, ends a
    command with its reason (which variable or database, what to do), not a traceback. So do a
    data directory that cannot be made or written (SHOESHOP_DATA_DIR) and a database that cannot
    be reached; any other error, a bug, keeps its traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, _, name = LAZY_COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command), LAZY_COMMANDS[cmd_name]
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            # Looked up, not imported: a command that never loaded SQLAlchemy or the schema
            # checks (supervise) cannot have raised their errors, and starts without them.
            revision = sys.modules.get("workers.schema.revision")
            if revision is not None and isinstance(exc, revision.SchemaError):
                raise click.ClickException(str(exc)) from None
            database_errors = sys.modules.get("sqlalchemy.exc")
            if database_errors is not None and isinstance(exc, database_errors.OperationalError):
                # The DB-API's error for what goes wrong around the statements, not in them: a
                # server that cannot be reached, refused credentials, a locked or unopenable file.
                raise _Failure("cannot use the database", exc) from None
            if not isinstance(exc, OSError):
                raise
            data_dir = _data_dir_of(exc)
            if data_dir is None:
                raise
            raise _Failure(
                f"cannot use the data directory {data_dir} (SHOESHOP_DATA_DIR)", exc
            ) from None


def _data_dir_of(error: OSError) -> Path | None:
    """The data directory when ``error`` is about it (a path in it, it, or a folder above it
    that making it needed), else None."""
    try:
        data_dir = get_settings().data_dir
    except ConfigurationError:
        return None
    for name in (error.filename, error.filename2):
        if not isinstance(name, (str, Path)):
            continue
        path = Path(name)
        if path == data_dir or data_dir in path.parents or path in data_dir.parents:
            return data_dir
    return None


@click.group(cls=_Commands)
def main() -> None:
    """An event-driven shoe shop on Celery."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="The shop's HTTP port.")
@click.option("--flower-port", default=DEFAULT_FLOWER_PORT, show_default=True)
@click.option("--gateway-port", default=DEFAULT_GATEWAY_PORT, show_default=True)
@click.option(
    "--mail-port",
    default=DEFAULT_MAIL_PORT,
    show_default=True,
    help="The local mail catcher's SMTP port (run when SHOESHOP_SMTP_URL is unset).",
)
@click.option("--procfile", type=click.Path(dir_okay=False, path_type=Path), default=None)
def up(
    port: int, flower_port: int, gateway_port: int, mail_port: int, procfile: Path | None
) -> None:
    """Start every process of the Procfile (plus the embedded Redis when no broker is set),
    after bringing every database to the code's revision (as `shoeshop db upgrade` does)."""
    from workers.launcher import Launcher

    # In a process of its own: Alembic and every component's tables need not stay in the
    # launcher's memory while the shop runs. Its error, if any, is already printed.
    upgraded = subprocess.run([str(Path(sys.executable).parent / "shoeshop"), "db", "upgrade"])
    if upgraded.returncode != 0:
        sys.exit(upgraded.returncode)

    launcher = Launcher(
        settings=get_settings(),
        procfile=procfile or find_procfile(),
        ports={"web": port, "flower": flower_port, "gateway": gateway_port, "mail": mail_port},
    )
    sys.exit(launcher.run())


# Options end at the command's first word: `supervise celery worker --heartbeat x` passes
# --heartbeat on to celery (write `--` before the command all the same).
@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--heartbeat",
    type=click.Path(dir_okay=False),
    default=None,
    help="A file the command touches as it works (given to it as SHOESHOP_HEARTBEAT_FILE); "
    "left untouched for --stale-after seconds, the command is killed and started again, as "
    "is one that dies of a signal. `shoeshop up` runs the relay this way.",
)
@click.option(
    "--stale-after",
    type=click.FloatRange(*STALE_AFTER_BOUNDS_S),
    default=None,
    help=f"Seconds a heartbeat may stay untouched (default {DEFAULT_STALE_AFTER_S:g}).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def supervise(heartbeat: str | None, stale_after: float | None, command: tuple[str, ...]) -> None:
    """Run COMMAND (after --), and start it again each time it exits with 75, as a worker does
    when its consumer stayed silent after a reconnection; any other exit ends this with the
    command's code. `shoeshop up` runs each worker this way, and the relay with --heartbeat."""
    from workers.supervise import supervise as run_supervised
    from workers.supervise import watched_by

    watch = watched_by(heartbeat, stale_after)
    try:
        code = run_supervised(command, heartbeat=watch)
    except OSError as exc:
        raise click.ClickException(f"cannot start {command[0]!r}: {exc}") from exc
    sys.exit(code if code >= 0 else 128 - code)


@main.command()
@click.option("--port", envvar="PORT", default=DEFAULT_MAIL_PORT, show_default=True)
def mailcatcher(port: int) -> None:
    """Run the local mail catcher on 127.0.0.1 (development and tests only): it keeps every
    mail it is sent under SHOESHOP_DATA_DIR/mail, shown at /admin/mail, until SIGTERM."""
    from workers.mailcatcher import start_in_thread

    directory = get_settings().mail_dir
    running = start_in_thread(directory, port)
    click.echo(f"mail catcher on {running.url}, keeping mail in {directory}")
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    running.stop()


@main.command()
@click.option("--port", envvar="PORT", default=DEFAULT_GATEWAY_PORT, show_default=True)
def gateway(port: int) -> None:
    """Run the payment gateway simulator (development and tests only)."""
    from workers.gateway.server import serve

    settings = get_settings()
    serve(
        port,
        settings.data_dir / "gateway",
        fault_rate=settings.gateway_fault_rate,
        latency_ms=settings.gateway_latency_ms,
    )


@main.command()
def relay() -> None:
    """Publish every committed event still waiting in an outbox, until stopped."""
    from config.celery import app
    from workers.messaging.broker_dead import is_amqp
    from workers.messaging.envelope import utcnow
    from workers.messaging.outbox import EMITTING_COMPONENTS
    from workers.operations import redelivery, retention
    from workers.operations import relay as outbox_relay
    from workers.operations.broker_drain import drain
    from workers.schema.guard import require_current_schemas
    from workers.schema.revision import SchemaError

    try:
        require_current_schemas(COMPONENTS)
    except SchemaError as exc:
        raise click.ClickException(f"refusing to start: {exc}") from None
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    archive = get_settings().archive_dir
    if archive is not None:  # found out now, not as a warning each minute while nothing prunes
        try:
            archive.mkdir(parents=True, exist_ok=True)
            probe = archive / ".shoeshop-can-write"
            probe.write_text("", "utf-8")
            probe.unlink()
        except OSError as exc:
            raise _Failure(f"refusing to start: SHOESHOP_ARCHIVE_DIR {archive}", exc) from None
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stall = timedelta(seconds=get_settings().redeliver_after_s)
    chores = [
        outbox_relay.every(
            REDELIVERY_INTERVAL_S, lambda: redelivery.redeliver_unapplied(app, utcnow(), stall)
        )
    ]
    # Published outbox rows and inbox rows past their retention go, a few batches a minute.
    chores.append(outbox_relay.every(RETENTION_INTERVAL_S, retention.prune))
    if is_amqp(str(app.conf.broker_url)):
        # What RabbitMQ itself dead-letters (delivery limit, unknown task) joins the app's
        # dead letters on every sweep, so operators have one place to look.
        chores.append(outbox_relay.every(BROKER_DRAIN_INTERVAL_S, lambda: drain(app)))
    click.echo(f"relay: watching the outboxes of {', '.join(EMITTING_COMPONENTS)}")
    outbox_relay.run(app, stop, chores=chores)


@main.command()
@click.option("--email", required=True, help="The customer's email address (any case).")
def erase(email: str) -> None:
    """Erase a customer's personal data (name, email, address, sealed card) from every
    component's store, the order event store and the dead letters and archives included; the
    orders' facts (items, amounts, statuses, times) stay. The same erasure as the admin page's
    (workers.customer_erasure)."""
    from config.celery import app
    from workers.customer_erasure import ErasureUnfinished, InvalidEmail, erase_customer

    try:
        erased = erase_customer(app, email)
    except InvalidEmail as exc:
        raise click.BadParameter(str(exc), param_hint="--email") from None
    except ErasureUnfinished as exc:
        raise _Failure("erasure not finished, run it again once this is fixed", exc) from None
    if not erased.orders:
        click.echo("the shop knows no customer with that email: nothing to erase")
        return
    click.echo(
        f"erased {erased.orders} order(s) from the shop, {erased.dead_letters} dead letter(s) "
        f"and {erased.archived_rows} archived row(s); orders, shipping and notifications "
        "erase theirs as they hear customer.erased (mails already sent are out of reach)"
    )


def find_procfile() -> Path:
    for candidate in (Path.cwd() / "Procfile", Path(__file__).resolve().parents[1] / "Procfile"):
        if candidate.is_file():
            return candidate
    raise click.ClickException("no Procfile here or at the project root; pass --procfile")


# The commands that live in modules of their own, imported when one of them runs (or `shoeshop
# --help` lists them). So `shoeshop supervise`, which `shoeshop up` keeps beside each worker and
# the relay, starts without SQLAlchemy, Alembic, Celery or the bench: 11 MB of imports instead of
# 40 (measured on 2026-12-01 on this project's machine, `import workers.cli` before and after).
LAZY_COMMANDS = {
    "attention": "workers.operator_actions:attention",
    "bench": "workers.bench.cli:bench",
    "db": "workers.db_cli:db",
    "dlq": "workers.operations.dlq_cli:dlq",
    "replay": "workers.operations.replay_cli:replay",
    "report": "workers.operations.replay_cli:report",
}


if __name__ == "__main__":
    main(prog_name="shoeshop")
