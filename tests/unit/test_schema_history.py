"""Each component's migration history is linear, and its head is the revision the code checks."""

from __future__ import annotations

import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table

from config.settings import COMPONENTS
from workers.schema import migrate
from workers.schema.revision import VERSIONS, SchemaNotCurrent, head_revision, known_revisions
from workers.schema.tables import metadata_of


def history(component: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.history_config(component))


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_head_the_code_needs_is_alembics_only_head(component: str) -> None:
    assert history(component).get_heads() == [head_revision(component)]


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_revision_follows_the_one_numbered_before_it(component: str) -> None:
    numbers = known_revisions(component)
    assert numbers[0] == "0001", "the first revision is release 0.1.0's schema"
    for before, after in pairwise(numbers):
        revision = history(component).get_revision(after)
        assert revision is not None and revision.down_revision == before


def test_the_refusal_names_the_component_both_revisions_and_the_command() -> None:
    behind = str(SchemaNotCurrent("orders", "0001", "0002"))
    assert behind == (
        "the orders database is at revision 0001; this code needs revision 0002. "
        "Run `shoeshop db upgrade`."
    )
    assert "no schema revision" in str(SchemaNotCurrent("shop", None, "0001"))
    ahead = str(SchemaNotCurrent("shop", "0099", "0001"))
    assert "does not know" in ahead and "shoeshop db upgrade" not in ahead


def test_a_new_revision_is_numbered_after_the_head_and_holds_what_the_models_added(
    tmp_path: Path,
) -> None:
    # A copy of the history: the real one never sees the made-up revision, even if this fails.
    shutil.copytree(VERSIONS / "shipping", tmp_path / "shipping")
    head = head_revision("shipping")
    extra = MetaData()
    Table("gift_cards", extra, Column("id", Integer, primary_key=True))
    models = [*metadata_of("shipping"), extra]

    path = migrate.new_revision("shipping", "gift cards", models, versions=tmp_path)

    upgrade = path.read_text().split("def downgrade")[0]
    assert path.name == f"{int(head) + 1:04d}_gift_cards.py"
    assert f"down_revision = '{head}'" in upgrade
    assert "op.create_table('gift_cards'" in upgrade
    assert "drop_table" not in upgrade, "only what the models added"
    assert head_revision("shipping") == head
