"""The order view keeps whether a message about the order waits in the dead letters.

The shop no longer asks the operations database whether an order is held up: it hears
message.parked, written with each dead letter, and keeps since when, on which component's queue,
and which event (cleared when the order moves on). Orders parked before this revision are told
to the shop by revision 0003 of the operations schema, which writes their message.parked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("delayed_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delayed_queue", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("delayed_event_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("delayed_event_id")
        batch_op.drop_column("delayed_queue")
        batch_op.drop_column("delayed_since")
