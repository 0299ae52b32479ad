"""Recommendation messages (topic ``recommendations``, keyed by user id). streamrec writes
them, so decoding is for trusted readers and tests, and raises ValueError.

>>> from streamrec.events import RecommendationMessage, RecommendedItem
>>> message = RecommendationMessage("u1", (RecommendedItem("i9", 0.8),), 3, ((4, 0.9),),
...                                 1700000000.0, lead_clusters=((4, 1.0),))
>>> decode_recommendation(encode_recommendation(message)) == message
True
>>> decode_recommendation(b'{"schema_version": 1}')
Traceback (most recent call last):
...
ValueError: invalid recommendation message: Object missing required field `user_id`
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from streamrec.events import SCHEMA_VERSION, RecommendationMessage, RecommendedItem, SourceEvent
from streamrec.wire import encode_message

Count = Annotated[int, Meta(ge=0)]


class RankedItem(Struct, omit_defaults=True):
    """With its lead cluster and that cluster's share of its vote when explained."""

    item_id: str
    score: float
    cluster: Count | None = None
    share: Annotated[float, Meta(ge=0, le=1)] | None = None


class Membership(Struct):
    cluster: Count
    membership: float


class RecommendationWire(Struct):
    """docs/events.md, "Recommendation messages"."""

    schema_version: Literal[1]
    user_id: str
    items: list[RankedItem]
    model_version: Count
    top_clusters: list[Membership]
    generated_at: float
    source: SourceEvent | None


_DECODER = msgspec.json.Decoder(RecommendationWire)


def encode_recommendation(message: RecommendationMessage) -> bytes:
    if message.lead_clusters:
        pairs = zip(message.items, message.lead_clusters, strict=True)
        items = [RankedItem(item, score, *lead) for (item, score), lead in pairs]
    else:
        items = [RankedItem(item, score) for item, score in message.items]
    clusters = [Membership(cluster, share) for cluster, share in message.top_clusters]
    version, generated_at = message.model_version, message.generated_at
    return encode_message(
        RecommendationWire(
            SCHEMA_VERSION, message.user_id, items, version, clusters, generated_at, message.source
        )
    )


def decode_recommendation(payload: bytes) -> RecommendationMessage:
    """The message in ``payload``; raises ValueError naming the first problem."""
    try:
        wire = _DECODER.decode(payload)
    except (msgspec.DecodeError, RecursionError) as error:
        raise ValueError(f"invalid recommendation message: {error}") from None
    # Lead clusters align with the items: kept only when every item names one.
    leads = tuple(
        (item.cluster, item.share) for item in wire.items if None not in (item.cluster, item.share)
    )
    return RecommendationMessage(
        wire.user_id,
        tuple(RecommendedItem(item.item_id, item.score) for item in wire.items),
        wire.model_version,
        tuple((entry.cluster, entry.membership) for entry in wire.top_clusters),
        wire.generated_at,
        wire.source,
        leads if len(leads) == len(wire.items) else (),
    )
