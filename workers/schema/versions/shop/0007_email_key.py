"""orders.email_key: the customer's email as an erasure looks it up (shop.readmodel.email_key),
indexed, so finding a customer's orders reads their rows, not every order; filled here for the
orders already there, a batch at a time in the order of their ids. And an index on
checkouts.order_id, by which an erasure finds its orders' checkouts."""

from __future__ import annotations

import re
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
    kept = _UNCARRIABLE.sub("", unicodedata.normalize("NFC", email)).strip()
    return unicodedata.normalize("NFC", kept.lower().replace("\u03c2", "\u03c3"))


# contracts.UNCARRIABLE as of this revision: C0 and C1 controls, direction marks and embeddings,
# line and paragraph separators, surrogates.
_UNCARRIABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def downgrade() -> None:
    op.drop_index("ix_checkouts_order_id", table_name="checkouts")
    op.drop_index("ix_orders_email_key", table_name="orders")
    op.drop_column("orders", "email_key")
