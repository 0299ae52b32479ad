"""Recommendation messages (topic ``recommendations``, keyed by user id). streamrec writes
them, so decoding is for trusted readers and tests, and raises ValueError.

>>> from streamrec.events import RecommendationMessage, RecommendedItem
>>> message = RecommendationMessage("u1", (RecommendedItem("i9", 0.8),), 3, ((4, 0.9),),
...                                 1700000000.0, lead_clusters=((4, 1.0),))
>>> decode_recommendation(encode_recommendation(message)) == message
True
>>> fused = RecommendationMessage("u1", (RecommendedItem("i9", 0.016),), 3, ((4, 0.9),), 1.0,
...                               lead_clusters=(None,), lead_sources=(("neighbours", 1.0),))
>>> msgspec.json.decode(encode_recommendation(fused))["items"]  # no cluster voted for it
[{'item_id': 'i9', 'score': 0.016, 'source': 'neighbours', 'source_share': 1.0}]
>>> decode_recommendation(encode_recommendation(fused)) == fused
True
>>> decode_recommendation(b'{"schema_version": 1}')
Traceback (most recent call last):
...
ValueError: invalid recommendation message: Object missing required field `user_id`
"""

from __future__ import annotations

from itertools import repeat
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from streamrec.events import SCHEMA_VERSION, RecommendationMessage, RecommendedItem, SourceEvent
from streamrec.wire import encode_message

Count = Annotated[int, Meta(ge=0)]
Share = Annotated[float, Meta(ge=0, le=1)]


class RankedItem(Struct, omit_defaults=True):
    """With its lead cluster and that cluster's share of its vote when explained (none for
    an item no cluster's vote put there), and in a fused list its lead source and that
    source's share of its score."""

    item_id: str
    score: float
    cluster: Count | None = None
    share: Share | None = None
    source: str | None = None
    source_share: Share | None = None


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


_NO_LEAD = (None, None)


def encode_recommendation(message: RecommendationMessage) -> bytes:
    if message.lead_sources:
        leads = message.lead_clusters or repeat(None)
        rows = zip(message.items, leads, message.lead_sources, strict=False)
        items = [
            RankedItem(item, score, *(lead or _NO_LEAD), *source)
            for (item, score), lead, source in rows
        ]
    elif message.lead_clusters:
        # Unpacked in the loop's target rather than with *: a third less per item.
        leads = [lead or _NO_LEAD for lead in message.lead_clusters]
        pairs = zip(message.items, leads, strict=True)
        items = [
            RankedItem(item, score, cluster, share) for (item, score), (cluster, share) in pairs
        ]
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
    # Lead sources and clusters align with the items. The sources are kept only when
    # every item names one; the clusters then with None for an item that names none, and
    # without sources only when every item names one.
    sources = tuple(
        (item.source, item.source_share)
        for item in wire.items
        if item.source is not None and item.source_share is not None
    )
    if len(sources) != len(wire.items):
        sources = ()
    leads = tuple(
        None if item.cluster is None or item.share is None else (item.cluster, item.share)
        for item in wire.items
    )
    if not sources and None in leads:
        leads = ()
    return RecommendationMessage(
        wire.user_id,
        tuple(RecommendedItem(item.item_id, item.score) for item in wire.items),
        wire.model_version,
        tuple((entry.cluster, entry.membership) for entry in wire.top_clusters),
        wire.generated_at,
        wire.source,
        leads,
        sources,
    )
