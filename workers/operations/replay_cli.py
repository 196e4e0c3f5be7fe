"""``shoeshop replay``: rebuild read models from the event logs, or catch a subscriber up;
``shoeshop report``: print a projection of the orders component.

Rebuilding and reporting run each component's own projection code (shop.readmodel,
workers.orders.projections) against its own database: the two imports of component code that
operations makes, listed in the import contracts of pyproject.toml.
"""

from __future__ import annotations

import click

from config.settings import duration_in_words, get_settings

PROJECTIONS = ("order_status", "order_list", "sales")


def _rebuild(name: str) -> int:
    """Rebuild one projection in its own component's database, in one transaction."""
    from workers.messaging.database import transaction

    if name == "order_status":
        from shop import readmodel

        with transaction("shop") as conn:
            return readmodel.rebuild(conn)
    from workers.orders import projections

    with transaction("orders") as conn:
        return projections.rebuild(conn, [name])


@click.command()
@click.option(
    "--projection",
    type=click.Choice(PROJECTIONS),
    multiple=True,
    help="Which read model to rebuild (default: all of them).",
)
@click.option("--to", "task", default=None, help="Re-send history to this subscriber task.")
def replay(projection: tuple[str, ...], task: str | None) -> None:
    """Rebuild read models from the event log, or re-publish history to one subscriber."""
    if task is not None:
        from config.celery import app
        from workers.operations.replay import replay_to

        try:
            sent = replay_to(app, task)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"re-sent {sent} event(s) to {task}; its inbox skips what it already applied")
        kept = duration_in_words(get_settings().outbox_retention_s)
        click.echo(
            f"only events still in an outbox are sent: published ones are kept {kept} "
            "(SHOESHOP_OUTBOX_RETENTION); older ones are pruned and cannot be re-sent"
        )
        return
    for name in projection or PROJECTIONS:
        click.echo(f"{name}: rebuilt from {_rebuild(name)} event(s)")


@click.command()
@click.argument("name", type=click.Choice(("order_list", "sales")))
@click.option("--limit", default=50, show_default=True, help="Rows to show, newest first.")
def report(name: str, limit: int) -> None:
    """Print a projection of the orders component: the order list, or sales per shoe and size."""
    from sqlalchemy import select

    from workers.messaging.database import engine_for
    from workers.orders import projections

    table = projections.PROJECTIONS[name][0]
    order = table.c.placed_at.desc() if name == "order_list" else table.c.revenue_cents.desc()
    with engine_for("orders").connect() as conn:
        rows = conn.execute(select(table).order_by(order).limit(limit)).all()
    click.echo("\t".join(column.name for column in table.columns))
    for row in rows:
        click.echo("\t".join("" if value is None else str(value) for value in row))
