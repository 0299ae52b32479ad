"""What the batch transaction does beside serving: the prequential hit indicator that feeds
the drift detector, the version being rebuilt, which gets every batch too, and users whose
demographics alone changed, who are encoded again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.features import FeatureSchema
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.services.ingest import IngestService
from streamrec.state import ModelStatus
from streamrec.wire import encode_interaction
from tests.fixtures.snapshots import differences
from tests.integration.trainer_support import (
    reference_snapshot,
    register,
    snapshot,
    trainer_settings,
)

START = 1_700_000_000.0


class _Replay:
    """Applies events through one IngestService, as one partition's consecutive batches."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.service = IngestService(settings, engine)
        self._offset = 0

    def apply(
        self, events: Sequence[tuple[str, str]], attributes: Mapping[str, str] | None = None
    ) -> BatchResult:
        records = []
        for user_id, item_id in events:
            event = InteractionEvent(
                f"e{self._offset}",
                user_id,
                item_id,
                "like",
                timestamp=START + self._offset,
                user_attributes=dict(attributes or {}),
            )
            records.append(
                SourceRecord("interactions", 0, self._offset, None, encode_interaction(event))
            )
            self._offset += 1
        return self.service.apply(records)


def test_the_hit_indicator_asks_whether_the_item_was_recommended_before_the_batch(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    register(engine, EfficientRec.new(settings.model, FeatureSchema(), seed=0), ModelStatus.ACTIVE)
    replay = _Replay(settings, engine)
    first = replay.apply(
        [(f"u{user}", f"i{(user + step) % 30}") for user in range(6) for step in range(4)]
    )
    assert first.prequential_hits == []  # nobody had recommendations of their own yet
    published = {message.user_id: message.items for message in first.recommendations}
    recommended = published["u1"][0].item_id
    seen = {f"i{(2 + step) % 30}" for step in range(4)}
    missed = next(
        f"i{item}"
        for item in range(30)
        if f"i{item}" not in seen and f"i{item}" not in {i.item_id for i in published["u2"]}
    )

    second = replay.apply([("u1", recommended), ("new-user", "i0"), ("u2", missed)])

    assert second.prequential_hits == [True, False]
    assert second.counters.interactions_applied == 3


def test_a_building_version_gets_every_batch_even_without_an_active_one(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=0)
    building = register(engine, model, ModelStatus.BUILDING)
    replay = _Replay(settings, engine)

    first = replay.apply(
        [(f"u{user}", f"i{(user * 3 + step) % 20}") for user in range(8) for step in range(3)]
    )
    second = replay.apply([("u1", "i19"), ("u9", "i2"), ("u1", "i2")])

    assert first.recommendations == second.recommendations == []
    assert first.model_version is None
    stored = snapshot(engine, building)
    assert len(stored.user_states) == 9
    assert differences(reference_snapshot(engine, settings, building), stored) == []


def test_a_user_whose_demographics_alone_changed_is_encoded_again(
    database_url: str, engine: Engine
) -> None:
    settings = trainer_settings(Settings(), database_url)
    model = EfficientRec.new(settings.model, FeatureSchema(), seed=0)
    active = register(engine, model, ModelStatus.ACTIVE)
    replay = _Replay(settings, engine)
    replay.apply([(f"u{user}", f"i{user + step}") for user in range(4) for step in range(3)])
    before = snapshot(engine, active)

    # A later "like" of an item already liked: no weight changes, only the demographics.
    result = replay.apply([("u1", "i1")], attributes={"age": "65+", "gender": "f"})

    assert result.counters.users_updated == 1
    after = snapshot(engine, active)
    assert differences(reference_snapshot(engine, settings, active), after) == []
    # The encoder reads demographics: the memberships moved.
    assert after.user_states["u1"][3] != before.user_states["u1"][3]
