"""Cluster statistics and shortlists, per model version.

Deltas are added in the database (``column = column + delta``), never read-modified-written,
so consumers on different partitions may apply theirs concurrently in any order.

>>> from streamrec.storage import UnitOfWork, create_memory_database
>>> from streamrec.state import ModelStatus, ModelVersion
>>> with UnitOfWork(create_memory_database()) as uow:
...     version = uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, {}, b""))
...     for _ in range(2):
...         uow.clusters.add_deltas(version, [ClusterItemDelta(3, "i1", 0.5, 0.5, 0.25)],
...                                 [ClusterMassDelta(3, 0.5)])
...     uow.clusters.top_items(version, cluster=3, limit=5), uow.clusters.masses(version)
([ClusterItemStatistics(item_id='i1', liked_mass=1.0, rated_mass=1.0, weighted_sum=0.5)], {3: 1.0})
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import orjson
from sqlalchemy import Text, cast, delete, select, union_all

from streamrec.state import ClusterItemDelta, ClusterItemStatistics, ClusterMassDelta
from streamrec.storage.codecs import decode_pairs, encode_pairs
from streamrec.storage.errors import InvalidRecordError
from streamrec.storage.repositories.base import Repository
from streamrec.storage.statements import chunked, is_one_of, upsert, upsert_columns
from streamrec.storage.tables import (
    ClusterItemStatisticsRow,
    ClusterMassRow,
    ClusterShortlistRow,
    table_of,
)

_STATISTICS = table_of(ClusterItemStatisticsRow)
_MASSES = table_of(ClusterMassRow)
_SHORTLISTS = table_of(ClusterShortlistRow)
# Below SQLite's limit of 500 terms in a compound SELECT.
_CLUSTERS_PER_STATEMENT = 100
_STATISTIC_COLUMNS = ("liked_mass", "rated_mass", "weighted_sum")

Shortlist = list[tuple[str, float]]


class ClusterRepository(Repository):
    def add_deltas(
        self,
        model_version: int,
        item_deltas: Iterable[ClusterItemDelta],
        mass_deltas: Iterable[ClusterMassDelta] = (),
    ) -> None:
        """Add the deltas to the statistics of ``model_version``: two statements in all."""
        item_rows = [
            {
                "model_version": model_version,
                "cluster": delta.cluster,
                "item_id": delta.item_id,
                **_finite(delta, _STATISTIC_COLUMNS),
            }
            for delta in item_deltas
        ]
        mass_rows = [
            {"model_version": model_version, "cluster": delta.cluster, **_finite(delta, ("mass",))}
            for delta in mass_deltas
        ]
        upsert(
            self._connection,
            _STATISTICS,
            item_rows,
            key=("model_version", "cluster", "item_id"),
            add=_STATISTIC_COLUMNS,
        )
        upsert(
            self._connection, _MASSES, mass_rows, key=("model_version", "cluster"), add=("mass",)
        )

    def add_delta_columns(
        self,
        model_version: int,
        *,
        clusters: np.ndarray,
        item_ids: Sequence[str],
        liked: np.ndarray,
        rated: np.ndarray,
        weighted: np.ndarray,
        mass_clusters: np.ndarray,
        mass_changes: np.ndarray,
    ) -> None:
        """``add_deltas`` for deltas already summed per key and sorted by it (row k adds
        liked[k], rated[k], weighted[k] to (clusters[k], item_ids[k]); mass_changes[k] to
        mass_clusters[k]): no per-delta Python objects, nothing merged, two statements."""
        values = [np.asarray(column, dtype=np.float64) for column in (liked, rated, weighted)]
        if not all(np.isfinite(column).all() for column in (*values, mass_changes)):
            # One NaN added to a statistic would poison it for good.
            raise InvalidRecordError("cluster deltas with a value that is not finite")
        rows = len(item_ids)
        upsert_columns(
            self._connection,
            _STATISTICS,
            {
                "model_version": [model_version] * rows,
                "cluster": np.asarray(clusters, dtype=np.int64).tolist(),
                "item_id": list(item_ids),
                **{
                    name: column.tolist()
                    for name, column in zip(_STATISTIC_COLUMNS, values, strict=True)
                },
            },
            key=("model_version", "cluster", "item_id"),
            add=_STATISTIC_COLUMNS,
        )
        upsert_columns(
            self._connection,
            _MASSES,
            {
                "model_version": [model_version] * len(mass_clusters),
                "cluster": np.asarray(mass_clusters, dtype=np.int64).tolist(),
                "mass": np.asarray(mass_changes, dtype=np.float64).tolist(),
            },
            key=("model_version", "cluster"),
            add=("mass",),
        )

    def top_items(
        self, model_version: int, cluster: int, limit: int
    ) -> list[ClusterItemStatistics]:
        """The cluster's ``limit`` items of largest rated mass (ties by item id), read in
        order from an index."""
        return self.top_items_by_cluster(model_version, [cluster], limit).get(cluster, [])

    def top_items_by_cluster(
        self, model_version: int, clusters: Iterable[int], limit: int
    ) -> dict[int, list[ClusterItemStatistics]]:
        """``top_items`` of each of ``clusters`` (those with statistics), in one statement per
        hundred clusters: a shortlist refresh reads every changed cluster, and a round trip
        per cluster cost more than the reads."""
        top: dict[int, list[ClusterItemStatistics]] = {}
        for group in chunked(sorted(set(clusters)), _CLUSTERS_PER_STATEMENT):
            # Each cluster's part is read in order from the index; the union keeps them apart.
            parts = [
                select(
                    _STATISTICS.c.cluster,
                    _STATISTICS.c.item_id,
                    *(_STATISTICS.c[name] for name in _STATISTIC_COLUMNS),
                )
                .where(
                    _STATISTICS.c.model_version == model_version,
                    _STATISTICS.c.cluster == cluster,
                )
                .order_by(_STATISTICS.c.rated_mass.desc(), _STATISTICS.c.item_id)
                .limit(limit)
                .subquery()
                for cluster in group
            ]
            union = union_all(*(select(part) for part in parts))
            columns = union.selected_columns
            rows = self._connection.execute(
                union.order_by(columns.cluster, columns.rated_mass.desc(), columns.item_id)
            )
            for cluster, *statistics in rows:
                top.setdefault(cluster, []).append(ClusterItemStatistics(*statistics))
        return top

    def clusters(self, model_version: int) -> list[int]:
        """The clusters that have statistics under ``model_version``, sorted."""
        statement = (
            select(_STATISTICS.c.cluster)
            .distinct()
            .where(_STATISTICS.c.model_version == model_version)
            .order_by(_STATISTICS.c.cluster)
        )
        return list(self._connection.scalars(statement))

    def masses(self, model_version: int) -> dict[int, float]:
        """M_c of every cluster with a mass under ``model_version``."""
        statement = select(_MASSES.c.cluster, _MASSES.c.mass).where(
            _MASSES.c.model_version == model_version
        )
        return {cluster: mass for cluster, mass in self._connection.execute(statement)}

    def save_shortlists(
        self, model_version: int, shortlists: Mapping[int, Sequence[tuple[str, float]]]
    ) -> None:
        """Replace the shortlists of the given clusters; others keep theirs."""
        now = self._clock()
        rows = [
            {
                "model_version": model_version,
                "cluster": cluster,
                "ranked_items": encode_pairs(items),
                "refreshed_at": now,
            }
            for cluster, items in shortlists.items()
        ]
        upsert(
            self._connection,
            _SHORTLISTS,
            rows,
            key=("model_version", "cluster"),
            replace=("ranked_items", "refreshed_at"),
        )

    def shortlists(
        self, model_version: int, clusters: Iterable[int] | None = None
    ) -> dict[int, Shortlist]:
        """Stored shortlists of ``clusters`` (all when None); clusters without one are absent.

        The lists are read as text and decoded by orjson: a consumer batch reads nearly every
        cluster's list (L pairs each), and the standard library's decoder took about 73 us a
        list of 200 pairs against 16 us. save_shortlists writes every label as a JSON string
        and every weight as a float, which both decoders read alike."""
        statement = select(_SHORTLISTS.c.cluster, cast(_SHORTLISTS.c.ranked_items, Text)).where(
            _SHORTLISTS.c.model_version == model_version
        )
        if clusters is None:
            statements = [statement]
        else:
            statements = [
                statement.where(is_one_of(self._connection, _SHORTLISTS.c.cluster, chunk))
                for chunk in chunked(set(clusters))
            ]
        found: dict[int, Shortlist] = {}
        for chunk_statement in statements:
            for cluster, items in self._connection.execute(chunk_statement):
                found[cluster] = list(decode_pairs(orjson.loads(items), str))
        return found

    def delete_version(self, model_version: int) -> None:
        """Drop the statistics, masses and shortlists of ``model_version``."""
        for table in (_STATISTICS, _MASSES, _SHORTLISTS):
            self._connection.execute(delete(table).where(table.c.model_version == model_version))


def _finite(delta: ClusterItemDelta | ClusterMassDelta, columns: Sequence[str]) -> dict[str, float]:
    values = {column: float(getattr(delta, column)) for column in columns}
    if not all(math.isfinite(value) for value in values.values()):
        # One NaN added to a statistic would poison it for good.
        raise InvalidRecordError(f"cluster delta with a value that is not finite: {delta}")
    return values
