"""``shoeshop dlq``: list, show, replay and discard dead letters (workers.operations.dlq), and
drain RabbitMQ's own (workers.operations.broker_drain)."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click

from workers.messaging.envelope import utcnow
from workers.operations import dlq as dead_letters
from workers.operations.dlq import Action, DeadLetter, DeadLetterNotFound, InvalidFilter

# How often `drain-broker --follow` looks at shoeshop.dead: a parked message is an operator's
# concern, not a customer's, so a few seconds of lag is fine and keeps the broker quiet.
FOLLOW_INTERVAL_S = 5.0


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """``--since``, read by ``dlq.parse_since``: anything it refuses is click's usage error
    naming the option (exit 2), never a traceback."""
    if not value:
        return None
    try:
        return dead_letters.parse_since(value, utcnow())
    except InvalidFilter as exc:
        raise click.BadParameter(exc.message, ctx, param) from None


@click.group()
def dlq() -> None:
    """Dead letters: messages that failed for good, parked for an operator."""


@dlq.command("list")
@click.option("--queue", type=click.Choice(dead_letters.QUEUE_NAMES), default=None)
@click.option(
    "--since",
    callback=_since,
    default=None,
    help=f"From {dead_letters.EARLIEST_SINCE:%Y-%m-%d} on: an ISO 8601 time (UTC if no offset), "
    "or an age like 30m, 2h, 7d.",
)
@click.option(
    "--status",
    type=click.Choice(dead_letters.ALL_STATUSES),
    default=dead_letters.PARKED,
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_command(queue: str | None, since: datetime | None, status: str, as_json: bool) -> None:
    """List dead letters, oldest failure first."""
    letters = dead_letters.list_letters(
        queue=queue,
        since=since,
        status=None if status == dead_letters.ALL else status,
    )
    if as_json:
        click.echo(json.dumps([letter.to_dict() for letter in letters], indent=2))
        return
    for letter in letters:
        click.echo(
            f"{letter.id}  {letter.last_failed_at:%Y-%m-%d %H:%M:%S}  {letter.status:<9}  "
            f"{letter.queue:<8}  {letter.task}  x{letter.attempts}  "
            f"{letter.exception}: {_first_line(letter.message)}"
        )
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command()
@click.argument("letter_id")
@click.option("--json", "as_json", is_flag=True)
def show(letter_id: str, as_json: bool) -> None:
    """Everything about one dead letter: event, exception, traceback, actions taken."""
    letter = _get(letter_id)
    history = dead_letters.actions(letter_id)
    if as_json:
        payload = {**letter.to_dict(), "actions": [action.to_dict() for action in history]}
        click.echo(json.dumps(payload, indent=2))
        return
    for label, value in (
        ("id", letter.id),
        ("status", letter.status),
        ("task", letter.task),
        ("queue", letter.queue),
        ("event id", letter.event_id),
        ("order", letter.subject),
        ("attempts", letter.attempts),
        ("first failed", letter.first_failed_at.isoformat()),
        ("last failed", letter.last_failed_at.isoformat()),
        ("exception", f"{letter.exception}: {letter.message}"),
    ):
        click.echo(f"{label:>13}: {value}")
    body = json.dumps(letter.event, indent=2) if letter.event else letter.raw or ""
    click.echo("\nevent:\n" + body)
    click.echo("\ntraceback:\n" + letter.traceback)
    for action in history:
        click.echo(f"{action.at.isoformat()}  {action.action}: {action.outcome}")


@dlq.command()
@click.argument("letter_id", required=False)
@click.option("--all", "every", is_flag=True, help="Replay every parked letter.")
@click.option(
    "--queue",
    type=click.Choice(dead_letters.QUEUE_NAMES),
    default=None,
    help="With --all: only these.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also send an event written before the inbox horizon (SHOESHOP_INBOX_RETENTION): its "
    "inbox row may be pruned, so a second effect is then possible.",
)
def replay(letter_id: str | None, every: bool, queue: str | None, force: bool) -> None:
    """Send a parked event to its task again; the task's inbox makes a repeat harmless."""
    from config.celery import app

    if every == (letter_id is not None):
        raise click.UsageError("give either a dead letter id or --all")
    if every:
        results = dead_letters.replay_all(app, queue=queue, force=force)
    else:
        _get(str(letter_id))
        results = [dead_letters.replay(app, str(letter_id), force=force)]
    if force and any(action.ok for action in results):
        click.echo(
            "forced: an event older than its task's inbox horizon may find its inbox row "
            "pruned, so a second effect is possible"
        )
    _report(results)


@dlq.command()
@click.argument("letter_id")
def discard(letter_id: str) -> None:
    """Give up on a dead letter; it stays on record as discarded."""
    _get(letter_id)
    _report([dead_letters.discard(letter_id)])


@dlq.command("drain-broker")
@click.option("--follow", is_flag=True, help=f"Keep draining every {FOLLOW_INTERVAL_S:.0f}s.")
def drain_broker(follow: bool) -> None:
    """Park what RabbitMQ dead-lettered into shoeshop.dead (delivery limit, rejections)."""
    from config.celery import app
    from workers.messaging.broker_dead import DEAD_QUEUE
    from workers.operations.broker_drain import drain

    while True:
        moved = drain(app)
        click.echo(f"parked {moved} message(s) from {DEAD_QUEUE}")
        if not follow:
            return
        time.sleep(FOLLOW_INTERVAL_S)


def _get(letter_id: str) -> DeadLetter:
    try:
        return dead_letters.get(letter_id)
    except DeadLetterNotFound:
        raise click.ClickException(f"no dead letter has the id {letter_id}") from None


def _report(results: list[Action]) -> None:
    for action in results:
        click.echo(f"{action.dead_letter_id}  {action.action}: {action.outcome}")
    if any(not action.ok for action in results):
        raise click.exceptions.Exit(1)
    if not results:
        click.echo("nothing to do")


def _first_line(text: str) -> str:
    return text.splitlines()[0][:120] if text else ""
