"""One dead letter per (event, task), guarded by a unique index.

Two workers parking the same event at the same moment could each find no row and insert one (on
PostgreSQL, where they run truly in parallel). Rows that 0.1.0 duplicated so are merged first:
the earliest keeps its id, attempts add up, the last failure is the latest one, and the
operators' actions on the others move to it.
"""

from __future__ import annotations

from collections import defaultdict

from alembic import op
from sqlalchemy import column, table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

dead_letters = table(
    "dead_letters",
    column("id"),
    column("event_id"),
    column("task"),
    column("attempts"),
    column("first_failed_at"),
    column("last_failed_at"),
    column("exception"),
    column("message"),
    column("traceback"),
    column("status"),
)
actions = table("dead_letter_actions", column("dead_letter_id"))


def upgrade() -> None:
    _merge_duplicates()
    op.drop_index("ix_dead_letters_event_task", table_name="dead_letters")
    op.create_index("ux_dead_letters_event_task", "dead_letters", ["event_id", "task"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_dead_letters_event_task", table_name="dead_letters")
    op.create_index("ix_dead_letters_event_task", "dead_letters", ["event_id", "task"])


def _merge_duplicates() -> None:
    conn = op.get_bind()
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    rows = conn.execute(
        dead_letters.select()
        .where(dead_letters.c.event_id.is_not(None))
        .order_by(dead_letters.c.first_failed_at)
    )
    for row in rows.mappings():
        groups[(row["event_id"], row["task"])].append(dict(row))
    for letters in groups.values():
        if len(letters) < 2:
            continue
        kept, others = letters[0], letters[1:]
        latest = max(letters, key=lambda letter: str(letter["last_failed_at"]))
        conn.execute(
            dead_letters.update()
            .where(dead_letters.c.id == kept["id"])
            .values(
                attempts=sum(int(str(letter["attempts"])) for letter in letters),
                last_failed_at=latest["last_failed_at"],
                exception=latest["exception"],
                message=latest["message"],
                traceback=latest["traceback"],
                status=latest["status"],
            )
        )
        ids = [letter["id"] for letter in others]
        conn.execute(
            actions.update()
            .where(actions.c.dead_letter_id.in_(ids))
            .values(dead_letter_id=kept["id"])
        )
        conn.execute(dead_letters.delete().where(dead_letters.c.id.in_(ids)))
