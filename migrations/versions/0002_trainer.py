"""The trainer: rebuild progress per model version, the SQLite run lock's lease table, and an
index on interactions.updated_at (new data since a time, the most recently active users).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('model_rebuilds',
    sa.Column('model_version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('users_total', sa.Integer(), nullable=False),
    sa.Column('users_done', sa.Integer(), nullable=False),
    sa.Column('users_built', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.String(), nullable=True),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.Column('finished_at', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['model_version'], ['model_versions.version'], name=op.f('fk_model_rebuilds_model_version_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version', name=op.f('pk_model_rebuilds'))
    )
    op.create_table('trainer_locks',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('owner', sa.String(), nullable=False),
    sa.Column('acquired_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_trainer_locks'))
    )
    op.create_index('ix_interactions_updated_at', 'interactions', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_interactions_updated_at', table_name='interactions')
    op.drop_table('trainer_locks')
    op.drop_table('model_rebuilds')
