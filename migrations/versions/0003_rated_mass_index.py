"""Shortlists are chosen from a cluster's most rated items, not its most liked: the index on
cluster_item_statistics moves from liked_mass to rated_mass. The shortlist of the default
weight, rated_share, is then exactly a cluster's top L items by rated mass, read in order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_cluster_item_statistics_top_items", table_name="cluster_item_statistics")
    op.create_index(
        "ix_cluster_item_statistics_top_rated",
        "cluster_item_statistics",
        ["model_version", "cluster", "rated_mass"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_cluster_item_statistics_top_rated", table_name="cluster_item_statistics")
    op.create_index(
        "ix_cluster_item_statistics_top_items",
        "cluster_item_statistics",
        ["model_version", "cluster", "liked_mass"],
        unique=False,
    )
