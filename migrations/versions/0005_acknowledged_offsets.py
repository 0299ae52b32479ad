"""consumer_offsets.acknowledged_offset: the offset below which the broker acknowledged the
outputs (recommendations, dead letters) of the records. A consumer resumes at the lower of it
and next_offset, so a batch that was stored but whose outputs a crash dropped is read again.
Existing rows start fully acknowledged (consumers are stopped for a migration).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consumer_offsets", sa.Column("acknowledged_offset", sa.BigInteger()))
    offsets = sa.table(
        "consumer_offsets", sa.column("next_offset"), sa.column("acknowledged_offset")
    )
    op.execute(offsets.update().values(acknowledged_offset=offsets.c.next_offset))
    # batch_alter_table: SQLite changes a column's nullability by copying the table.
    with op.batch_alter_table("consumer_offsets") as batch:
        batch.alter_column("acknowledged_offset", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("consumer_offsets") as batch:
        batch.drop_column("acknowledged_offset")
