"""The relational schema: one typed ORM class per table, feeding Alembic's autogenerate.

Repositories use these classes only as Core tables (set-based statements); no ORM sessions.
Every timestamp is a float of seconds since the epoch (UTC), the same on SQLite and PostgreSQL.
``event_timestamp`` is when something happened according to its producer; ``updated_at`` is
when streamrec stored it.

Everything derived from a model (user states, cluster statistics, shortlists) is keyed by
``model_version``, so a new version can be rebuilt beside the one that keeps serving.

>>> sorted(Base.metadata.tables)[:3]
['cluster_item_statistics', 'cluster_masses', 'cluster_shortlists']
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from streamrec.state import ModelStatus
from streamrec.storage.records import TrainingTrigger

# Deterministic constraint names, so autogenerate and hand-written migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_MODEL_VERSION_KEY = "model_versions.version"


def _one_of(column: str, choices: type[StrEnum]) -> str:
    """A CHECK clause; plain strings rather than a native ENUM keep migrations portable."""
    return f"{column} IN ({', '.join(repr(choice.value) for choice in choices)})"


def _model_version_column() -> Mapped[int]:
    # A version's derived rows go with it when the version is deleted.
    return mapped_column(
        ForeignKey(_MODEL_VERSION_KEY, ondelete="CASCADE"), primary_key=True, autoincrement=False
    )


def table_of(row_class: type[Base]) -> Table:
    """The Core table behind an ORM class, for set-based statements."""
    return cast(Table, row_class.__table__)


class Base(DeclarativeBase):
    """Python types map to portable column types: floats are 8-byte, text is unbounded."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        float: Double(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        bytes: LargeBinary(),
        str: String(),
    }


class ItemRow(Base):
    """An item's visible features, as the latest item event stated them."""

    __tablename__ = "items"

    item_id: Mapped[str] = mapped_column(primary_key=True)
    title: Mapped[str | None]
    categorical: Mapped[dict[str, Any]]
    numeric: Mapped[dict[str, Any]]
    event_timestamp: Mapped[float]
    updated_at: Mapped[float]


class UserRow(Base):
    """What a user told us about themselves (demographics); independent of any model.

    ``attribute_event_keys`` holds, per attribute name, the ``[timestamp, event_id]`` of the
    event whose value is stored (streamrec.model.user_attributes); NULL or a missing name
    means unknown, and any event's value then wins.
    """

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(primary_key=True)
    attributes: Mapped[dict[str, Any]]
    attribute_event_keys: Mapped[dict[str, Any] | None]
    updated_at: Mapped[float]


class ModelVersionRow(Base):
    """A registered model. A partial unique index allows at most one active version."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(_one_of("status", ModelStatus), name="status"),
        Index(
            "uq_model_versions_one_active",
            "status",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))
    parent_version: Mapped[int | None] = mapped_column(
        ForeignKey(_MODEL_VERSION_KEY, ondelete="SET NULL")
    )
    config: Mapped[dict[str, Any]]
    weights: Mapped[bytes]
    metrics: Mapped[dict[str, Any]]
    data_window: Mapped[dict[str, Any]]
    reason: Mapped[str | None]
    created_at: Mapped[float]
    promoted_at: Mapped[float | None]


class UserStateRow(Base):
    """A user's derived state under one model version (see streamrec.state.UserProfile).

    Vectors are little-endian float32 bytes; top_clusters is JSON [[cluster, membership], ...].
    """

    __tablename__ = "user_states"

    model_version: Mapped[int] = _model_version_column()
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    pooled_sum: Mapped[bytes]
    profile: Mapped[bytes | None]
    nonzero_count: Mapped[int]
    interaction_count: Mapped[int]
    top_clusters: Mapped[list[Any]]
    last_event_at: Mapped[float | None]
    updated_at: Mapped[float]
    # Recency-weighted pooling only (NULL without it): n_u with recency weights and t_ref.
    weighted_count: Mapped[float | None]
    pooling_reference_time: Mapped[float | None]
    # Random, new on every write: a consumer's in-memory copy of the state is current while
    # the token is the one it wrote (streamrec.services.user_cache).
    state_token: Mapped[int | None] = mapped_column(BigInteger)


class InteractionRow(Base):
    """The latest preference of one user for one item.

    No foreign keys: interactions may name items whose features never arrived, and the
    primary key (user_id, item_id) already serves "a user's interactions".
    """

    __tablename__ = "interactions"

    user_id: Mapped[str] = mapped_column(primary_key=True)
    item_id: Mapped[str] = mapped_column(primary_key=True)
    weight: Mapped[float]
    event_id: Mapped[str]
    event_type: Mapped[str]
    event_timestamp: Mapped[float]
    updated_at: Mapped[float]


class ClusterItemStatisticsRow(Base):
    """Additive statistics of one (cluster, item) pair (see streamrec.state.ClusterItemDelta)."""

    __tablename__ = "cluster_item_statistics"
    __table_args__ = (
        # Shortlists are chosen from a cluster's most rated items. One index only: every
        # statistics upsert changes the indexed masses, so each index costs every row.
        Index("ix_cluster_item_statistics_top_rated", "model_version", "cluster", "rated_mass"),
    )

    model_version: Mapped[int] = _model_version_column()
    cluster: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    item_id: Mapped[str] = mapped_column(primary_key=True)
    liked_mass: Mapped[float]
    rated_mass: Mapped[float]
    weighted_sum: Mapped[float]


class ClusterMassRow(Base):
    """M_c, the total membership mass of one cluster."""

    __tablename__ = "cluster_masses"

    model_version: Mapped[int] = _model_version_column()
    cluster: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    mass: Mapped[float]


class ClusterShortlistRow(Base):
    """A cluster's derived top-L items, JSON [[item_id, weight], ...], best first."""

    __tablename__ = "cluster_shortlists"

    model_version: Mapped[int] = _model_version_column()
    cluster: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    ranked_items: Mapped[list[Any]]
    refreshed_at: Mapped[float]


class ItemCooccurrenceRow(Base):
    """How often users took two items close together (streamrec.model.item_neighbours);
    the pair (item, item) counts the users who have the item. Independent of any model."""

    __tablename__ = "item_cooccurrence"
    __table_args__ = (
        # An item's neighbours are its pairs of largest count. One index only: every
        # upsert changes the indexed counts, so each index costs every row.
        Index("ix_item_cooccurrence_top", "item_id", "pair_count"),
    )

    item_id: Mapped[str] = mapped_column(primary_key=True)
    other_item_id: Mapped[str] = mapped_column(primary_key=True)
    pair_count: Mapped[float]


class ItemPopularityRow(Base):
    """An item's decayed popularity as log2 of the sum of 2^(t / half-life) over its events
    (streamrec.model.decayed_popularity): comparable between items at any time, so never
    rewritten as time passes. Independent of any model."""

    __tablename__ = "item_popularity"
    # The most popular items are read in order from this index.
    __table_args__ = (Index("ix_item_popularity_top", "log_score"),)

    item_id: Mapped[str] = mapped_column(primary_key=True)
    log_score: Mapped[float]


class ConsumerOffsetRow(Base):
    """Where a consumer group stands on a partition.

    ``next_offset``, written with the batch, is where the state stands: the records below it
    were applied. ``acknowledged_offset`` is written after the broker acknowledged a batch's
    outputs: the records below it had their recommendations published. A consumer resumes at
    the lower of the two, so outputs a crash dropped are published again.
    """

    __tablename__ = "consumer_offsets"

    consumer_group: Mapped[str] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    acknowledged_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[float]


class DeadLetterRow(Base):
    """Rejected input, kept byte for byte with the reason and where it came from."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_reason", "reason"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    received_at: Mapped[float]
    source_topic: Mapped[str]
    source_partition: Mapped[int | None]
    source_offset: Mapped[int | None] = mapped_column(BigInteger)
    key: Mapped[bytes | None]
    payload: Mapped[bytes]
    reason: Mapped[str]
    detail: Mapped[str | None]


class TrainingRunRow(Base):
    """One run of the trainer, from start to outcome."""

    __tablename__ = "training_runs"
    __table_args__ = (CheckConstraint(_one_of("trigger", TrainingTrigger), name="trigger"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[float]
    finished_at: Mapped[float | None]
    outcome: Mapped[str | None]
    reason: Mapped[str | None]
    metrics: Mapped[dict[str, Any]]
    candidate_version: Mapped[int | None] = mapped_column(
        ForeignKey(_MODEL_VERSION_KEY, ondelete="SET NULL")
    )
    parent_version: Mapped[int | None] = mapped_column(
        ForeignKey(_MODEL_VERSION_KEY, ondelete="SET NULL")
    )


# The trainer's tables (migration 0002) ---------------------------------------------------

# Finds the interactions written since a time without a scan: new data since the last training
# run, the most recently active users (the trainer's held-out sample), and whether a retired
# version's state is still current.
Index("ix_interactions_updated_at", InteractionRow.updated_at)


class ModelRebuildRow(Base):
    """The progress of rebuilding one version's derived state, user by user in id order.

    ``cursor`` is the last user id of the last committed chunk, so a crashed rebuild resumes
    after it; ``finished_at`` is set once every user and every shortlist is built.
    """

    __tablename__ = "model_rebuilds"

    model_version: Mapped[int] = _model_version_column()
    users_total: Mapped[int]
    users_done: Mapped[int]
    users_built: Mapped[int]
    cursor: Mapped[str | None]
    started_at: Mapped[float]
    updated_at: Mapped[float]
    finished_at: Mapped[float | None]


class TrainerLockRow(Base):
    """A lease on a named lock, for SQLite (PostgreSQL uses an advisory lock instead): held by
    ``owner`` until ``expires_at`` unless renewed, so a killed holder frees it in time."""

    __tablename__ = "trainer_locks"

    name: Mapped[str] = mapped_column(primary_key=True)
    owner: Mapped[str]
    acquired_at: Mapped[float]
    expires_at: Mapped[float]


# Robustness tables (migration 0008) ------------------------------------------------------


class ProcessedEventRow(Base):
    """Every accepted interaction event id, with a fingerprint of its content.

    ``interactions`` keeps only the latest event per (user, item), so it cannot tell whether an
    event id was seen before. This table can: an id seen again with the same fingerprint is a
    duplicate (ignored), with another fingerprint a reused id (dead-lettered). Rows older than
    ``events.deduplication_retention_days`` may be pruned: that is the deduplication window.
    """

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str]
    item_id: Mapped[str]
    received_at: Mapped[float] = mapped_column(index=True)


class OffsetResetRow(Base):
    """An operator's decision to move a consumer group's stored offset on one partition, made
    because the stored offset lay outside the log (``streamrec consume --reset-offsets``)."""

    __tablename__ = "offset_resets"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    consumer_group: Mapped[str]
    topic: Mapped[str]
    partition: Mapped[int]
    stored_offset: Mapped[int] = mapped_column(BigInteger)
    log_start_offset: Mapped[int] = mapped_column(BigInteger)
    log_end_offset: Mapped[int] = mapped_column(BigInteger)
    choice: Mapped[str] = mapped_column(String(16))
    new_offset: Mapped[int] = mapped_column(BigInteger)
    reset_at: Mapped[float]
