"""orders.email_key: the customer's email as an erasure looks it up (shop.readmodel.email_key),
indexed, so finding a customer's orders reads their rows, not every order; filled here for the
orders already there, a batch at a time in the order of their ids. And an index on
checkouts.order_id, by which an erasure finds its orders' checkouts."""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 1000

orders = sa.table(
    "orders",
    sa.column("id", sa.String),
    sa.column("customer", sa.JSON),
    sa.column("email_key", sa.String),
)


def upgrade() -> None:
    op.add_column("orders", sa.Column("email_key", sa.String(length=400), nullable=True))
    op.create_index("ix_orders_email_key", "orders", ["email_key"])
    op.create_index("ix_checkouts_order_id", "checkouts", ["order_id"])
    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(
            sa.select(orders.c.id, orders.c.customer)
            .where(orders.c.id > after)
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            orders.update().where(orders.c.id == sa.bindparam("key")),
            [{"key": row.id, "email_key": _email_key(row.customer)} for row in rows],
        )
        after = rows[-1].id


def _email_key(customer: object) -> str | None:
    # shop.readmodel.email_key as of this revision: a migration does not import the code it
    # migrates, which changes after it.
    email = customer.get("email") if isinstance(customer, dict) else None
    if not isinstance(email, str):
        return None
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", email).strip().lower())


def downgrade() -> None:
    op.drop_index("ix_checkouts_order_id", table_name="checkouts")
    op.drop_index("ix_orders_email_key", table_name="orders")
    op.drop_column("orders", "email_key")
