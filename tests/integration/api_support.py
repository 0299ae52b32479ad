"""What the API and dashboard tests share: a PostgreSQL schema of their own holding a served
state (a briefly trained model of the planted-groups stream with every user's state built,
titled items, dead letters and stored offsets), and clients of ``streamrec serve``'s app.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from streamrec.api.app import create_app
from streamrec.api.context import ApiContext, ControlPublish
from streamrec.cli.recommend import command as recommend_command
from streamrec.config import Settings
from streamrec.events import ItemEvent
from streamrec.storage import create_database_engine
from streamrec.storage.migrations import upgrade
from streamrec.storage.records import DeadLetter
from streamrec.storage.unit_of_work import UnitOfWork
from tests.fixtures.databases import PostgresqlSchemas, _schema_url
from tests.integration.trainer_support import (
    SMALL_MODEL,
    SMALL_SERVING,
    SMALL_TRAINING,
    activate_with_state,
    store,
    stream_interactions,
    trained_model,
)

OPERATOR_TOKEN = "operator-token-for-tests-0123"
READ_TOKEN = "read-token-for-tests-456789"
CONSUMER_GROUP = "streamrec-api-tests"
# Stored next offsets of the input partitions (no broker: the lag is unknown).
STORED_OFFSETS = {0: 120, 1: 80}


@dataclass(frozen=True)
class ServedState:
    url: str
    settings: Settings
    versions: list[int]
    users: list[str]
    items: list[str]


def api_settings(url: str, **api: Any) -> Settings:
    """The small model's settings on ``url``, a broker address nobody listens on (the
    status reads fail fast), and ``api`` settings."""
    base = Settings()
    return base.model_copy(
        update={
            "database_url": SecretStr(url),
            "model": base.model.model_copy(update=SMALL_MODEL),
            "serving": base.serving.model_copy(update=SMALL_SERVING),
            "training": base.training.model_copy(update=SMALL_TRAINING),
            "kafka": base.kafka.model_copy(
                update={"bootstrap_servers": "127.0.0.1:9", "consumer_group": CONSUMER_GROUP}
            ),
            # model_copy does not validate: secrets are wrapped here as the settings would.
            "api": base.api.model_copy(
                update={
                    name: SecretStr(value) if name.endswith("_token") else value
                    for name, value in api.items()
                }
            ),
        }
    )


def build_served_state(
    server_url: str, schemas: PostgresqlSchemas, versions: int = 1
) -> ServedState:
    """A fresh schema with ``versions`` trained versions, the last one active, each built
    over every stored user."""
    url = _schema_url(server_url, schemas.create())
    upgrade(url)
    settings = api_settings(url)
    engine = create_database_engine(url)
    try:
        interactions = stream_interactions()
        store(engine, interactions)
        item_ids = sorted({row.item_id for row in interactions})
        with UnitOfWork(engine) as uow:
            uow.items.save_many(
                ItemEvent(item_id, 1.0, f"Film number {item_id}", {"genres": ("drama",)}, {})
                for item_id in item_ids
            )
            uow.dead_letters.add_many(
                [
                    DeadLetter("interactions", b"{not json", "invalid_json", "line 1", 0, 7),
                    DeadLetter("interactions", b'{"a": 1}', "unsupported_schema_version", None),
                ]
            )
            uow.offsets.save(CONSUMER_GROUP, settings.topics.interactions, STORED_OFFSETS)
            uow.commit()
        numbers = [
            activate_with_state(engine, settings, trained_model(settings, interactions, seed=seed))
            for seed in range(versions)
        ]
        users = sorted({row.user_id for row in interactions})
    finally:
        engine.dispose()
    return ServedState(url, settings, numbers, users, item_ids)


@contextmanager
def api_client(
    settings: Settings, publish: ControlPublish | None = None
) -> Iterator[tuple[TestClient, ApiContext]]:
    """A client of the app over ``settings``' database (the server's context too)."""
    engine: Engine = create_database_engine(settings.effective_database_url)
    context = ApiContext.create(settings, engine, publish)
    try:
        with TestClient(create_app(context), base_url="http://testserver") as client:
            yield client, context
    finally:
        engine.dispose()


def assert_the_cli_explains_as_the_api(settings: Settings, client: TestClient, user_id: str) -> str:
    """``streamrec recommend USER --explain --json`` prints the API's document (but for
    when it was generated); returns what ``--explain`` prints."""
    outcome = CliRunner().invoke(recommend_command, [user_id, "--explain", "--json"], obj=settings)
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.output)
    served_now = client.get(f"/api/users/{user_id}/recommendations").json()
    for document in (printed, served_now):
        document.pop("generated_at")
    assert printed == served_now
    table = CliRunner().invoke(recommend_command, [user_id, "--explain"], obj=settings)
    assert table.exit_code == 0, table.output
    return table.output


def csrf_token_in(page: str) -> str:
    """The CSRF token a dashboard page's forms carry."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]*)"', page)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> None:
    response = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
