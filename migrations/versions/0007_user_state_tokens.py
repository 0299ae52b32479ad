"""user_states.state_token: a random number written with every state, new on every write. A
consumer keeps the users it wrote in memory and trusts its copy while the stored token is
still the one it wrote (streamrec.services.user_cache); any other writer changes the token.
NULL for existing rows: no copy matches them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_states", sa.Column("state_token", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # batch_alter_table: SQLite drops a column by copying the table.
    with op.batch_alter_table("user_states") as batch:
        batch.drop_column("state_token")
