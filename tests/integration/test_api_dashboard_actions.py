"""The dashboard's train and roll-back buttons against real PostgreSQL and the real broker:
refused without the operator's sign-in, without the CSRF token or from another site; when
allowed, they do what ``streamrec train now`` and ``streamrec models rollback`` do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamrec.config import Settings
from streamrec.storage import create_database_engine
from streamrec.storage.records import TrainingTrigger
from streamrec.storage.unit_of_work import UnitOfWork
from streamrec.wire.control import ModelActivated, TrainCommand, parse_control
from tests.fixtures.databases import PostgresqlSchemas
from tests.integration.api_support import (
    OPERATOR_TOKEN,
    READ_TOKEN,
    ServedState,
    api_client,
    api_settings,
    build_served_state,
    csrf_token_in,
    sign_in,
)
from tests.integration.pipeline_support import read_topic

pytestmark = pytest.mark.postgres
ACTIONS = ("/dashboard/actions/train", "/dashboard/actions/rollback")


@pytest.fixture(scope="module")
def served(postgresql_server_url: str, postgresql_schemas: PostgresqlSchemas) -> ServedState:
    return build_served_state(postgresql_server_url, postgresql_schemas, versions=2)


@pytest.fixture
def settings(served: ServedState, kafka_settings: Settings) -> Settings:
    """The served database, the tokens, and the test's broker and topics."""
    settings = api_settings(served.url, operator_token=OPERATOR_TOKEN, read_token=READ_TOKEN)
    return settings.model_copy(
        update={"kafka": kafka_settings.kafka, "topics": kafka_settings.topics}
    )


def active_version(served: ServedState) -> int | None:
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            return uow.models.active_version()
    finally:
        engine.dispose()


@pytest.fixture
def untouched(served: ServedState) -> Iterator[None]:
    """The test must leave the active version as it found it."""
    before = active_version(served)
    yield
    assert active_version(served) == before


@pytest.mark.usefixtures("untouched")
def test_actions_are_refused_to_anyone_but_a_signed_in_operator_with_the_csrf_token(
    settings: Settings,
) -> None:
    with api_client(settings) as (client, _):
        for path in ACTIONS:
            assert client.post(path, data={"csrf_token": "0" * 64}).status_code == 403
        # A reader may read but not act, even with the reader session's own CSRF token.
        sign_in(client, READ_TOKEN)
        reader_token = csrf_token_in(client.get("/dashboard/models").text)
        for path in ACTIONS:
            assert client.post(path, data={"csrf_token": reader_token}).status_code == 403

    with api_client(settings) as (client, context):
        sign_in(client, OPERATOR_TOKEN)
        page = client.get("/dashboard/models").text
        token = csrf_token_in(page)
        for path in ACTIONS:
            assert client.post(path).status_code == 403  # no CSRF token
            assert client.post(path, data={"csrf_token": token[:-1] + "x"}).status_code == 403
            from_elsewhere = client.post(
                path, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
            )
            assert from_elsewhere.status_code == 403
        assert context.actions.recent() == []


def test_a_wrong_token_does_not_sign_in(settings: Settings) -> None:
    with api_client(settings) as (client, _):
        refused = client.post("/dashboard/login", data={"token": "not-the-operator-token"})
        assert refused.status_code == 401
        assert "streamrec_session" not in client.cookies
        # With a read token set, reading pages asks for a sign-in first.
        page = client.get("/dashboard/models", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=/dashboard/models"


@pytest.mark.usefixtures("untouched")
def test_without_an_operator_token_the_buttons_are_off(served: ServedState) -> None:
    with api_client(api_settings(served.url)) as (client, _):
        page = client.get("/dashboard/models").text
        assert "Actions are off" in page
        assert client.post("/dashboard/actions/rollback", data={}).status_code == 403
        assert client.post("/dashboard/login", data={"token": OPERATOR_TOKEN}).status_code == 401


@pytest.mark.usefixtures("untouched")
def test_train_now_sends_the_operators_train_request(settings: Settings) -> None:
    with api_client(settings) as (client, context):
        sign_in(client, OPERATOR_TOKEN)
        token = csrf_token_in(client.get("/dashboard/models").text)
        response = client.post(
            "/dashboard/actions/train",
            data={"csrf_token": token, "reason": "new catalogue", "force": "true"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/models?notice=train-requested"
        context.actions.wait(timeout=60)
        [action] = context.actions.recent()
        assert action.outcome == "done", action.message
        page = client.get("/dashboard/models").text
        assert "train request" in page and "sent" in page
    commands = [
        message
        for record in read_topic(settings, settings.topics.control)
        if isinstance(message := parse_control(record.value), TrainCommand)
    ]
    assert [(c.trigger, c.reason, c.force) for c in commands] == [
        (TrainingTrigger.OPERATOR, "new catalogue", True)
    ]
    assert commands[0].request_id in action.message


def test_roll_back_makes_the_previous_version_active_and_announces_it(
    served: ServedState, settings: Settings
) -> None:
    first, second = served.versions
    assert active_version(served) == second
    with api_client(settings) as (client, context):
        sign_in(client, OPERATOR_TOKEN)
        page = client.get("/dashboard/models").text
        assert f"Roll back to version {first}" in page
        response = client.post(
            "/dashboard/actions/rollback",
            data={"csrf_token": csrf_token_in(page), "reason": "a test rolls back"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        context.actions.wait(timeout=120)
        [action] = context.actions.recent()
        assert action.outcome == "done", action.message
        assert action.message.startswith(f"version {first} is active")
    assert active_version(served) == first
    engine = create_database_engine(served.url)
    try:
        with UnitOfWork(engine) as uow:
            model = uow.models.get(first)
    finally:
        engine.dispose()
    assert model is not None and model.reason == "a test rolls back"
    flips = [
        (message.version, message.previous_version)
        for record in read_topic(settings, settings.topics.control)
        if isinstance(message := parse_control(record.value), ModelActivated)
    ]
    assert flips == [(first, second)]
