"""The shape of one model: everything needed to rebuild its modules, as plain data.

It is saved beside the weights (the "config" of a ModelVersion), so a process that loads a
version needs nothing else: the hashed-table sizes, widths, head and the item feature schema.

>>> from streamrec.config import ModelSettings
>>> architecture = Architecture.from_settings(ModelSettings(clusters=8), FeatureSchema())
>>> Architecture.from_dict(architecture.to_dict()) == architecture
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from streamrec.config import ModelSettings
from streamrec.model.features import FeatureSchema
from streamrec.model.pooling import PoolingWeight

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Architecture:
    hash_buckets: int
    feature_buckets: int
    feature_dim: int
    item_dim: int
    profile_dim: int
    hidden_dim: int
    clusters: int
    cluster_head: Literal["sigmoid", "centroid"]
    centroid_temperature: float
    pooling_weight: PoolingWeight = "preference"
    schema: FeatureSchema = field(default_factory=FeatureSchema)
    # How this version's cluster statistics hold memberships (model.memberships.
    # rounded_memberships). Kept with the version, since the statistics of a version must be
    # built with one value throughout; versions saved before it existed used exact ones.
    statistics_membership_precision: float = 0.0
    # The event time at which this version's decayed cluster statistics weigh a contribution
    # by 1 (model.decay): the latest event of its training data, so that each version's g
    # stays near 1 over the events it serves. Versions saved before it existed have 0.
    statistics_time_landmark: float = 0.0

    @classmethod
    def from_settings(cls, settings: ModelSettings, schema: FeatureSchema) -> Architecture:
        return cls(
            hash_buckets=settings.hash_buckets,
            feature_buckets=settings.feature_buckets,
            feature_dim=settings.feature_dim,
            item_dim=settings.item_dim,
            profile_dim=settings.profile_dim,
            hidden_dim=settings.hidden_dim,
            clusters=settings.clusters,
            cluster_head=settings.cluster_head,
            centroid_temperature=settings.centroid_temperature,
            pooling_weight=settings.pooling_weight,
            schema=schema,
            statistics_membership_precision=settings.statistics_membership_precision,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = self.schema.to_dict()
        data["format_version"] = FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"model config format {version!r} is not {FORMAT_VERSION}")
        values = {key: value for key, value in data.items() if key != "format_version"}
        values["schema"] = FeatureSchema.from_dict(values.get("schema", {}))
        return cls(**values)
