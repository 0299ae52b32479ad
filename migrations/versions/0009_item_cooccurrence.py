"""item_cooccurrence: how often users took two items close together, and, as the pair
(item, item), how many users have each item (streamrec.model.item_neighbours). An item's
neighbours are read in order from ix_item_cooccurrence_top. Independent of any model
version: no rebuild recomputes it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-14 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_cooccurrence",
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("other_item_id", sa.String(), nullable=False),
        sa.Column("pair_count", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", "other_item_id", name=op.f("pk_item_cooccurrence")),
    )
    op.create_index(
        "ix_item_cooccurrence_top", "item_cooccurrence", ["item_id", "pair_count"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_item_cooccurrence_top", table_name="item_cooccurrence")
    op.drop_table("item_cooccurrence")
