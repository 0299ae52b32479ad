"""What people browse through ``streamrec serve``: clusters with their top items, an item with
the shortlists it is on, the model registry and the training runs, and the pipeline's status
with the time of the consumers' last batch. Read-only, from the stored state.

A cluster's *share* is its mass M_c over the total mass of all clusters: the part of the
users' membership it holds.

>>> summarise_cluster(4, 3.0, 12.0, [("i1", 0.5), ("i2", 0.25)], top=1)
ClusterSummary(cluster=4, mass=3.0, share=0.25, shortlist_length=2, top_items=[('i1', 0.5)])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from streamrec.events import ItemEvent
from streamrec.model.recommending import Shortlist
from streamrec.offsets import LogRange
from streamrec.services.status import PipelineStatus, read_status
from streamrec.state import ClusterItemStatistics, ModelVersion
from streamrec.storage.records import TrainingRun
from streamrec.storage.unit_of_work import UnitOfWork

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """One cluster of the active version: its mass M_c, its share of all mass, the length
    of its shortlist and the first of its (item, W_cj) entries."""

    cluster: int
    mass: float
    share: float
    shortlist_length: int
    top_items: list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class ClusterDetail:
    """A cluster's summary, its whole shortlist and the statistics of its most rated items
    (A_cj liked mass, C_cj rated mass, the weighted sum)."""

    summary: ClusterSummary
    shortlist: Shortlist
    statistics: list[ClusterItemStatistics]


@dataclass(frozen=True, slots=True)
class ShortlistPlace:
    """Where an item stands on one cluster's shortlist: its rank (1 = first) and W_cj."""

    cluster: int
    rank: int
    weight: float


@dataclass(frozen=True, slots=True)
class ItemDetail:
    item: ItemEvent | None
    item_id: str
    shortlists: list[ShortlistPlace]


@dataclass(slots=True)
class PipelineHealth:
    """``streamrec status`` (``services.status.PipelineStatus``) and when the consumers last
    stored offsets, i.e. finished a batch (None: never)."""

    status: PipelineStatus
    last_batch_at: float | None
    stored_records: int = 0


def summarise_cluster(
    cluster: int, mass: float, total_mass: float, shortlist: Shortlist, top: int
) -> ClusterSummary:
    share = mass / total_mass if total_mass > 0.0 else 0.0
    return ClusterSummary(cluster, mass, share, len(shortlist), list(shortlist[:top]))


def clusters_overview(uow: UnitOfWork, version: int, top: int = 5) -> list[ClusterSummary]:
    """Every cluster with a mass or a shortlist under ``version``, heaviest first."""
    masses = uow.clusters.masses(version)
    shortlists = uow.clusters.shortlists(version)
    total = sum(mass for mass in masses.values() if mass > 0.0)
    clusters = sorted(set(masses) | set(shortlists), key=lambda c: (-masses.get(c, 0.0), c))
    return [
        summarise_cluster(
            cluster, masses.get(cluster, 0.0), total, shortlists.get(cluster, []), top
        )
        for cluster in clusters
    ]


def cluster_detail(
    uow: UnitOfWork, version: int, cluster: int, statistics: int = 50
) -> ClusterDetail | None:
    """One cluster under ``version``; None when it has neither mass nor shortlist."""
    masses = uow.clusters.masses(version)
    shortlist = uow.clusters.shortlists(version, [cluster]).get(cluster)
    if cluster not in masses and shortlist is None:
        return None
    total = sum(mass for mass in masses.values() if mass > 0.0)
    summary = summarise_cluster(cluster, masses.get(cluster, 0.0), total, shortlist or [], 10)
    top_rated = uow.clusters.top_items(version, cluster, statistics)
    return ClusterDetail(summary, shortlist or [], top_rated)


def item_detail(uow: UnitOfWork, item_id: str, version: int | None) -> ItemDetail:
    """The stored item (None if no item event named it) and the shortlists of ``version``
    that hold it, best place first."""
    item = uow.items.get_many([item_id]).get(item_id)
    places: list[ShortlistPlace] = []
    if version is not None:
        for cluster, shortlist in uow.clusters.shortlists(version).items():
            for rank, (listed, weight) in enumerate(shortlist, start=1):
                if listed == item_id:
                    places.append(ShortlistPlace(cluster, rank, weight))
                    break
    places.sort(key=lambda place: (place.rank, -place.weight, place.cluster))
    return ItemDetail(item, item_id, places)


def model_versions(uow: UnitOfWork) -> list[ModelVersion]:
    """Every registered version, newest first, without its weights."""
    return uow.models.list()


def training_runs(uow: UnitOfWork, limit: int) -> list[TrainingRun]:
    """The latest ``limit`` training runs, newest first."""
    latest = uow.training_runs.latest()
    if latest is None:
        return []
    # Run ids are consecutive: walking down from the latest lists them newest first.
    run_ids = range(latest.id, max(0, latest.id - limit), -1)
    return [run for run_id in run_ids if (run := uow.training_runs.get(run_id)) is not None]


def pipeline_health(
    uow: UnitOfWork,
    consumer_group: str,
    topics: Iterable[str],
    log_ranges: Mapping[TopicPartition, LogRange],
    broker_error: str | None,
) -> PipelineHealth:
    """The status ``streamrec status`` prints, with the last batch's time and the number of
    records below the stored offsets (what a throughput meter follows)."""
    topics = list(topics)
    status = read_status(uow, consumer_group, topics, log_ranges, broker_error)
    stored = sum(lag.stored_offset or 0 for lag in status.partitions)
    return PipelineHealth(status, uow.catalogue.last_offsets_stored_at(consumer_group), stored)


def titles(uow: UnitOfWork, item_ids: Sequence[str]) -> dict[str, str]:
    """The known titles of ``item_ids``."""
    return {
        item_id: item.title
        for item_id, item in uow.items.get_many(item_ids).items()
        if item.title is not None
    }
