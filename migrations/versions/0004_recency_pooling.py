"""Recency-weighted pooling (serving.pooling_half_life_seconds): a user state keeps its
recency-weighted count n_u and the reference time t_ref its sums are relative to. Both are
NULL for states pooled without recency.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_states", sa.Column("weighted_count", sa.Double(), nullable=True))
    op.add_column("user_states", sa.Column("pooling_reference_time", sa.Double(), nullable=True))


def downgrade() -> None:
    # batch_alter_table: SQLite drops a column by copying the table.
    with op.batch_alter_table("user_states") as batch:
        batch.drop_column("pooling_reference_time")
        batch.drop_column("weighted_count")
