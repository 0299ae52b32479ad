"""The JSON the HTTP API takes and gives (they make the OpenAPI schema at ``/docs``).

Field descriptions state each number's scale; docs/api.md says the same in prose.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# The longest ad-hoc history accepted: the consumer keeps whole histories, but a request
# body is a person's or a test's list, and this bounds its cost.
MAX_HISTORY_ITEMS = 1_000


class Membership(BaseModel):
    cluster: int
    membership: float = Field(description="p_uc, the user's membership of the cluster (0-1).")


class ClusterVote(BaseModel):
    cluster: int
    membership: float = Field(description="p_uc, the user's membership of the cluster.")
    weight: float = Field(description="W_cj, the item's weight on the cluster's shortlist.")
    contribution: float = Field(description="p_uc * W_cj, the cluster's part of the vote.")
    share: float = Field(
        description="|contribution| over the sum of the item's |contributions|: 0-1, summing "
        "to 1 over the item's clusters."
    )


class RecentItem(BaseModel):
    item_id: str
    title: str | None
    share: float = Field(
        description="Its part of the neighbours' score for the item, recency * co-occurrence "
        "count over the sum of that over the recent items that named it: 0-1, summing to 1."
    )


class SourceShare(BaseModel):
    source: str = Field(
        description="The candidate list that put the item there: clusters (the vote), "
        "neighbours (the item neighbours of the user's recent items) or popularity (the "
        "decayed popularity)."
    )
    share: float = Field(
        description="Its part of the item's score, weight / (60 + rank) over the fused score: "
        "0-1, summing to 1 over the item's sources (1 when the list is the vote alone)."
    )
    rank: int = Field(description="The item's rank in that source's list, 1 = first.")
    score: float = Field(
        description="The item's score in that source's list: the vote's (re-ranked or not), "
        "the neighbours' co-occurrence score, or the popularity relative to the most "
        "popular item's, in (0, 1]."
    )
    recent_items: list[RecentItem] = Field(
        description="For the neighbours: the user's recent items that named it, largest "
        "share first; else empty."
    )


class ExplainedItem(BaseModel):
    rank: int = Field(description="1 = first.")
    item_id: str
    title: str | None
    score: float = Field(
        description="The ranking score: the vote, or with re-ranking retrieval + "
        "serving.rerank_vote_weight * log(vote). With the item neighbours or the decayed "
        "popularity on, the rank-fusion score, sum over the sources that name the item of "
        "weight / (60 + rank), in (0, sum of the weights / 61]. It orders the list."
    )
    vote: float = Field(description="sum over the user's clusters of p_uc * W_cj.")
    support: float = Field(
        description="vote / sum of the user's memberships: the membership-weighted mean of "
        "W_cj, in 0-1 with the share and rated_share shortlist weights (the default)."
    )
    retrieval: float | None = Field(
        description="With re-ranking, the retrieval part (P z_u) . t_j of the vote's score; "
        "else, or for an item the vote did not put there, null."
    )
    sources: list[SourceShare] = Field(
        description="The sources that put the item there, largest share first."
    )
    clusters: list[ClusterVote] = Field(description="The clusters that voted, largest first.")


class Recommendations(BaseModel):
    user_id: str | None = Field(description="null for an ad-hoc history.")
    model_version: int
    generated_at: float = Field(description="Seconds since the epoch.")
    known_user: bool = Field(
        description="False: no state under the active version, the global shortlist is served."
    )
    score_scale: str = Field(
        description="What the items' scores are: vote (sum of p_uc W_cj), reranked "
        "(retrieval + weight * log(vote), unbounded), fused (sum over the sources of "
        "weight / (60 + rank), in (0, sum of the weights / 61]) or popularity (the "
        "popularity fallback: relative to the most popular item's, in (0, 1])."
    )
    top_clusters: list[Membership]
    items: list[ExplainedItem]


class HistoryItem(BaseModel):
    item_id: str = Field(min_length=1, max_length=4096)
    weight: float = Field(1.0, ge=-1.0, le=1.0, description="Preference weight in [-1, 1].")


class AdHocHistory(BaseModel):
    """A history to recommend for, not stored: item ids, or items with weights."""

    items: list[str | HistoryItem] = Field(max_length=MAX_HISTORY_ITEMS)
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Demographics, as user_attributes of an event."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [{"items": ["318", {"item_id": "858", "weight": 0.5}], "attributes": {}}]
        }
    }


class Interaction(BaseModel):
    item_id: str
    title: str | None
    weight: float = Field(description="Preference weight in [-1, 1].")
    event_type: str
    timestamp: float


class User(BaseModel):
    user_id: str
    known_user: bool
    model_version: int
    top_clusters: list[Membership]
    attributes: dict[str, str]
    history: list[Interaction] = Field(description="Newest first.")


class Item(BaseModel):
    item_id: str
    title: str | None
    timestamp: float
    categorical: dict[str, list[str]]
    numeric: dict[str, float]


class ShortlistPlace(BaseModel):
    cluster: int
    rank: int
    weight: float


class ItemDetail(BaseModel):
    item_id: str
    item: Item | None = Field(description="null when no item event described it.")
    shortlists: list[ShortlistPlace] = Field(
        description="The active version's shortlists that hold the item."
    )


class ItemsPage(BaseModel):
    items: list[Item]
    next_after: str | None = Field(description="Pass as `after` for the next page.")


class ShortlistEntry(BaseModel):
    item_id: str
    title: str | None
    weight: float = Field(description="W_cj (serving.shortlist_weight).")


class Cluster(BaseModel):
    cluster: int
    mass: float = Field(description="M_c, the sum of the users' memberships.")
    share: float = Field(description="M_c over the total mass: 0-1.")
    shortlist_length: int
    top_items: list[ShortlistEntry]


class ItemStatistics(BaseModel):
    item_id: str
    title: str | None
    liked_mass: float
    rated_mass: float
    weighted_sum: float


class ClusterDetail(Cluster):
    shortlist: list[ShortlistEntry]
    most_rated: list[ItemStatistics]


class Clusters(BaseModel):
    model_version: int
    clusters: list[Cluster]


class ModelVersion(BaseModel):
    version: int
    status: str
    parent_version: int | None
    created_at: float | None
    promoted_at: float | None
    reason: str | None
    metrics: dict[str, Any]
    data_window: dict[str, Any]


class TrainingRun(BaseModel):
    id: int
    trigger: str
    started_at: float
    finished_at: float | None
    outcome: str | None = Field(description="null while the run goes on.")
    reason: str | None
    candidate_version: int | None
    parent_version: int | None


class Partition(BaseModel):
    topic: str
    partition: int
    stored_offset: int | None
    log_start: int | None
    log_end: int | None
    lag: int | None = Field(description="null when unknown (no broker) or out of range.")
    lag_text: str = Field(description="The lag as `streamrec status` prints it.")


class Status(BaseModel):
    consumer_group: str
    active_model_version: int | None
    partitions: list[Partition]
    total_lag: int | None
    records_per_second: float | None = Field(
        description="Records the consumers applied per second between this server's last "
        "status reads (at most a minute apart); null on the first read."
    )
    last_batch_at: float | None
    dead_letters_by_reason: dict[str, int]
    users_with_state: int
    items: int
    interactions: int
    broker_error: str | None


class DeadLetter(BaseModel):
    id: int | None
    received_at: float | None
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    reason: str
    detail: str | None
    key: str | None = Field(description="The key as text (bytes that are not UTF-8 replaced).")
    payload_preview: str = Field(description="The payload's first bytes as text.")
    payload_bytes: int
