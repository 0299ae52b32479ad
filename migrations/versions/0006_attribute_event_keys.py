"""users.attribute_event_keys: per attribute name, the [timestamp, event_id] of the event whose
value is stored, so that an older event delivered late no longer overwrites a newer value
(streamrec.model.user_attributes). NULL for existing rows: their values yield to the next
event that names them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("attribute_event_keys", sa.JSON(), nullable=True))


def downgrade() -> None:
    # batch_alter_table: SQLite drops a column by copying the table.
    with op.batch_alter_table("users") as batch:
        batch.drop_column("attribute_event_keys")
