"""Orders needing attention, for operators: which they are (the shop's view) and the commands
about them (workers.operations.attention), joined here for `shoeshop attention` and the admin
pages (``shop.web.admin_attention``), as neither the shop nor operations may import the other.
Loads no Flask: the CLI imports it without the web stack.
"""

from __future__ import annotations

from typing import Any

import click
from celery import Celery

from shop import readmodel
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.operations import attention as commands
from workers.operations.attention import ACTIONS, InvalidCommand

__all__ = [
    "ACTIONS",
    "InvalidCommand",
    "NotNeedingAttention",
    "attention",
    "needing_attention",
    "request",
]


def needing_attention() -> list[dict[str, Any]]:
    """The orders waiting for an operator, oldest first (``shop.readmodel.needing_attention``'s
    shape). Raises sqlalchemy.exc.SQLAlchemyError when the shop's database is away."""
    with engine_for("shop").connect() as conn:
        return readmodel.needing_attention(conn)


class NotNeedingAttention(Exception):
    """The command is about an order the shop does not list as needing attention: an order it
    does not know (``known`` False) or one that needs none now. Nothing was sent."""

    def __init__(self, order_id: str, *, known: bool) -> None:
        what = "needs no attention" if known else "is no order the shop knows"
        super().__init__(f"order {order_id} {what}: nothing was sent")
        self.known = known


def request(app: Celery, order_id: str, action: str, note: str) -> Envelope:
    """An operator's command about an order the shop lists as needing attention
    (``workers.operations.attention.request``). Raises InvalidCommand for a field at fault,
    NotNeedingAttention for an order not on the list (nothing sent either way), and
    sqlalchemy.exc.SQLAlchemyError when a database is away. The list may lag orders by a moment;
    orders still decides, and records a command that no longer applies as ignored."""
    order_id, action, note = commands.check(order_id, action, note)
    with engine_for("shop").connect() as conn:
        row = readmodel.attention_of(conn, order_id)
        known = row is not None or readmodel.knows(conn, order_id)
    if row is None or row["reason"] is None:
        raise NotNeedingAttention(order_id, known=known)
    return commands.request(app, order_id, action, note)


@click.group()
def attention() -> None:
    """Orders a failed compensation left for an operator (a refund refused, a parked refund or
    stock release): list them, ask for the refund again, or close one with a note."""


@attention.command("list")
def list_command() -> None:
    """The orders needing attention, oldest first."""
    rows = needing_attention()
    for row in rows:
        since = f"{row['since']:%Y-%m-%d %H:%M:%S}" if row["since"] else "-"
        amount = f"{row['total_cents'] / 100:.2f} {row['currency']}" if row["currency"] else "-"
        click.echo(
            f"{row['order_id']}  {since}  {row['status'] or '-':<9}  {amount:>12}  "
            f"{row['reason']}: {row['detail'] or ''}"
        )
    click.echo(f"{len(rows)} order(s) need attention")


@attention.command("retry-refund")
@click.argument("order_id")
@click.option("--note", required=True, help="Why the refund may go through now (kept).")
def retry_refund(order_id: str, note: str) -> None:
    """Ask the gateway for the order's refund again, under a new refund id."""
    _send(order_id, "retry_refund", note)


@attention.command()
@click.argument("order_id")
@click.option("--note", required=True, help="How it was settled (kept in the order's stream).")
def close(order_id: str, note: str) -> None:
    """Close an order's attention: what it needed was settled by other means."""
    _send(order_id, "close", note)


def _send(order_id: str, action: str, note: str) -> None:
    from config.celery import app  # the CLI's other commands need no Celery app

    try:
        event = request(app, order_id, action, note)
    except InvalidCommand as exc:
        raise click.BadParameter(str(exc)) from None
    except NotNeedingAttention as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent {action} for order {event.subject} (event {event.id}); orders records it")
