"""The event contract: what flows in and out of streamrec, as plain immutable values.

These types know nothing of JSON, Kafka or SQL. Their wire form is written by
``streamrec.wire`` and read back by ``streamrec.validation``; the contract is documented in
docs/events.md.

>>> event = InteractionEvent(event_id="e1", user_id="u1", item_id="i9", type="rating",
...                          value=4.5, timestamp=1_700_000_000.0)
>>> event.user_id
'u1'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class InteractionEvent:
    """One user did something to one item at ``timestamp`` (seconds since the epoch, UTC).

    ``type`` is ``rating`` (with ``value`` on the configured rating scale) or an implicit type
    from the configured weight table (``click``, ``view``, ``like`` ...), whose optional
    ``value`` overrides the table's weight. ``user_attributes`` are optional demographics.
    """

    event_id: str
    user_id: str
    item_id: str
    type: str
    timestamp: float
    value: float | None = None
    user_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemEvent:
    """Upsert of one item's visible features (categorical lists and numeric values)."""

    item_id: str
    timestamp: float
    title: str | None = None
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    numeric: dict[str, float] = field(default_factory=dict)


class RecommendedItem(NamedTuple):
    """One entry of a recommendation list. A named tuple, not a dataclass: a consumer builds
    one per published entry (twenty per touched user), and a tuple is built in about half
    the time of a frozen dataclass."""

    item_id: str
    score: float


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """Where the event that caused a recommendation came from, and when it happened."""

    topic: str
    partition: int
    offset: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class RecommendationMessage:
    """The output: a user's ranked items, published keyed by user id.

    ``lead_clusters``, when given, holds one (cluster, share) pair per item, in the items'
    order: the cluster that contributed most to the item's vote and its share of the vote
    (``streamrec.model.explanations``); None for an item of a fused list that the vote did
    not put there. Empty when not computed. ``lead_sources``, given for a fused list (item
    neighbours or decayed popularity on, or the popularity fallback), holds one (source,
    share) pair per item: the candidate source with the largest share of the item's fused
    score, and that share (``streamrec.model.rank_fusion``). Its wire form is
    ``streamrec.wire.recommendations.RecommendationWire``.
    """

    user_id: str
    items: tuple[RecommendedItem, ...]
    model_version: int
    top_clusters: tuple[tuple[int, float], ...]
    generated_at: float
    source: SourceEvent | None = None
    lead_clusters: tuple[tuple[int, float] | None, ...] = ()
    lead_sources: tuple[tuple[str, float], ...] = ()


class RejectionReason(StrEnum):
    """Why a message was refused, as its dead letter says: contract (docs/events.md, with a
    one-line detail that starts with the field), so codes are added, never renamed."""

    EMPTY_PAYLOAD = "empty_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    DUPLICATE_KEY = "duplicate_key"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    TOO_LONG = "too_long"
    INVALID_ID = "invalid_id"
    INVALID_TEXT = "invalid_text"
    INVALID_TIMESTAMP = "invalid_timestamp"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    WRONG_TOPIC = "wrong_topic"
    KEY_MISMATCH = "key_mismatch"
    # Found against the stored event ids (streamrec.services.event_ids): parsing is stateless.
    EVENT_ID_REUSED = "event_id_reused"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused message's reason and one-line detail (``user_id: is required``)."""

    reason: RejectionReason
    detail: str
