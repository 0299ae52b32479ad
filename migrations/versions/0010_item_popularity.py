"""item_popularity: each item's decayed popularity as log2 of the sum of 2^(t / half-life)
over its events (streamrec.model.decayed_popularity), combined per batch by a log-sum-exp.
The most popular items are read in order from ix_item_popularity_top. Independent of any
model version: no rebuild recomputes it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-15 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_popularity",
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("log_score", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_popularity")),
    )
    op.create_index("ix_item_popularity_top", "item_popularity", ["log_score"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_item_popularity_top", table_name="item_popularity")
    op.drop_table("item_popularity")
