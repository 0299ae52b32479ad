"""Fixtures of the integration tests alone; the databases and the broker come from
tests/fixtures, for every test."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from streamrec.config import Settings
from tests.integration.pipeline_support import PipelineStack, pipeline_settings


@pytest.fixture
def pipeline(kafka_settings: Settings, database_url: str, engine: Engine) -> PipelineStack:
    """The streaming pipeline of one test: its own topics on the session broker, its
    database (``on_postgresql`` picks PostgreSQL), the small model and short batches of
    ``pipeline_settings``, and an untrained small model as the active version. Nothing is
    produced yet: ``pipeline.feed(events, items)`` produces them and consumes them."""
    return PipelineStack.with_active_model(pipeline_settings(kafka_settings, database_url), engine)
