"""Initial schema: catalogue, users and their per-version state, interactions, cluster
statistics and shortlists, the model registry, consumer offsets, dead letters, training runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 03:09:08.538455
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consumer_offsets',
    sa.Column('consumer_group', sa.String(), nullable=False),
    sa.Column('topic', sa.String(), nullable=False),
    sa.Column('partition', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('consumer_group', 'topic', 'partition', name=op.f('pk_consumer_offsets'))
    )
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('source_topic', sa.String(), nullable=False),
    sa.Column('source_partition', sa.Integer(), nullable=True),
    sa.Column('source_offset', sa.BigInteger(), nullable=True),
    sa.Column('key', sa.LargeBinary(), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('detail', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    op.create_index('ix_dead_letters_reason', 'dead_letters', ['reason'], unique=False)
    op.create_table('interactions',
    sa.Column('user_id', sa.String(), nullable=False),
    sa.Column('item_id', sa.String(), nullable=False),
    sa.Column('weight', sa.Double(), nullable=False),
    sa.Column('event_id', sa.String(), nullable=False),
    sa.Column('event_type', sa.String(), nullable=False),
    sa.Column('event_timestamp', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'item_id', name=op.f('pk_interactions'))
    )
    op.create_table('items',
    sa.Column('item_id', sa.String(), nullable=False),
    sa.Column('title', sa.String(), nullable=True),
    sa.Column('categorical', sa.JSON(), nullable=False),
    sa.Column('numeric', sa.JSON(), nullable=False),
    sa.Column('event_timestamp', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_items'))
    )
    op.create_table('model_versions',
    sa.Column('version', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('parent_version', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('weights', sa.LargeBinary(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('data_window', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('promoted_at', sa.Double(), nullable=True),
    sa.CheckConstraint("status IN ('candidate', 'building', 'active', 'retired', 'rejected')", name=op.f('ck_model_versions_status')),
    sa.ForeignKeyConstraint(['parent_version'], ['model_versions.version'], name=op.f('fk_model_versions_parent_version_model_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_model_versions'))
    )
    op.create_index('uq_model_versions_one_active', 'model_versions', ['status'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
    op.create_table('users',
    sa.Column('user_id', sa.String(), nullable=False),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_users'))
    )
    op.create_table('cluster_item_statistics',
    sa.Column('model_version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cluster', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('item_id', sa.String(), nullable=False),
    sa.Column('liked_mass', sa.Double(), nullable=False),
    sa.Column('rated_mass', sa.Double(), nullable=False),
    sa.Column('weighted_sum', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['model_version'], ['model_versions.version'], name=op.f('fk_cluster_item_statistics_model_version_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version', 'cluster', 'item_id', name=op.f('pk_cluster_item_statistics'))
    )
    op.create_index('ix_cluster_item_statistics_top_items', 'cluster_item_statistics', ['model_version', 'cluster', 'liked_mass'], unique=False)
    op.create_table('cluster_masses',
    sa.Column('model_version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cluster', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('mass', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['model_version'], ['model_versions.version'], name=op.f('fk_cluster_masses_model_version_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version', 'cluster', name=op.f('pk_cluster_masses'))
    )
    op.create_table('cluster_shortlists',
    sa.Column('model_version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cluster', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ranked_items', sa.JSON(), nullable=False),
    sa.Column('refreshed_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['model_version'], ['model_versions.version'], name=op.f('fk_cluster_shortlists_model_version_model_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version', 'cluster', name=op.f('pk_cluster_shortlists'))
    )
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('finished_at', sa.Double(), nullable=True),
    sa.Column('outcome', sa.String(), nullable=True),
    sa.Column('reason', sa.String(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('candidate_version', sa.Integer(), nullable=True),
    sa.Column('parent_version', sa.Integer(), nullable=True),
    sa.CheckConstraint("trigger IN ('schedule', 'operator', 'drift')", name=op.f('ck_training_runs_trigger')),
    sa.ForeignKeyConstraint(['candidate_version'], ['model_versions.version'], name=op.f('fk_training_runs_candidate_version_model_versions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['parent_version'], ['model_versions.version'], name=op.f('fk_training_runs_parent_version_model_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    op.create_table('user_states',
    sa.Column('model_version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('user_id', sa.String(), nullable=False),
    sa.Column('pooled_sum', sa.LargeBinary(), nullable=False),
    sa.Column('profile', sa.LargeBinary(), nullable=True),
    sa.Column('nonzero_count', sa.Integer(), nullable=False),
    sa.Column('interaction_count', sa.Integer(), nullable=False),
    sa.Column('top_clusters', sa.JSON(), nullable=False),
    sa.Column('last_event_at', sa.Double(), nullable=True),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['model_version'], ['model_versions.version'], name=op.f('fk_user_states_model_version_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.user_id'], name=op.f('fk_user_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_version', 'user_id', name=op.f('pk_user_states'))
    )


def downgrade() -> None:
    op.drop_table('user_states')
    op.drop_table('training_runs')
    op.drop_table('cluster_shortlists')
    op.drop_table('cluster_masses')
    op.drop_index('ix_cluster_item_statistics_top_items', table_name='cluster_item_statistics')
    op.drop_table('cluster_item_statistics')
    op.drop_table('users')
    op.drop_index('uq_model_versions_one_active', table_name='model_versions', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
    op.drop_table('model_versions')
    op.drop_table('items')
    op.drop_table('interactions')
    op.drop_index('ix_dead_letters_reason', table_name='dead_letters')
    op.drop_table('dead_letters')
    op.drop_table('consumer_offsets')
