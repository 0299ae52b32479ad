"""Decayed cluster statistics on PostgreSQL: the consumer's upserts of decayed deltas and the
rebuild keep, on the system of record, the decayed contributions of every user's final
state (the same checks as tests/unit/test_decayed_statistics.py, which run on SQLite)."""

from __future__ import annotations

from sqlalchemy import Engine

from streamrec.services.ingest import IngestService
from streamrec.services.rebuild import VersionRebuilder
from streamrec.state import ModelStatus
from tests.integration.pipeline_support import on_postgresql
from tests.unit.test_decayed_statistics import (
    assert_same_statistics,
    decay_settings,
    register_dated_model,
    statistics_from_scratch,
    stored_statistics,
)
from tests.unit.test_user_states_recency import records_of, stream


@on_postgresql
def test_decayed_statistics_of_the_consumer_and_the_rebuild_match_scratch(
    engine: Engine,
) -> None:
    settings = decay_settings()
    active = register_dated_model(engine, settings, ModelStatus.ACTIVE)
    records = records_of(stream(count=160, seed=7, users=6))
    service = IngestService(settings, engine)
    for start in range(0, 80, 7):
        service.apply(records[start : min(start + 7, 80)])
    building = register_dated_model(engine, settings, ModelStatus.BUILDING)
    for start in range(80, 160, 9):
        service.apply(records[start : start + 9])
    VersionRebuilder(settings, engine, chunk_users=2).rebuild(building)
    for version in (active, building):
        stored = stored_statistics(engine, version)
        assert stored[1], f"version {version} has no cluster mass"
        assert_same_statistics(stored, statistics_from_scratch(engine, version))
