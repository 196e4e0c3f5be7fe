"""An acceptance deadline keeps the trace context of the order.placed that set it (issue #19,
traces), so the cancellation its timer asks for joins the order's trace.

Deadlines set before this revision, and every one set while tracing is off, keep NULL: the timer
then asks in a trace of its own, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acceptance_deadlines") as batch_op:
        # A W3C traceparent, version 00: 55 characters.
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("acceptance_deadlines") as batch_op:
        batch_op.drop_column("traceparent")
