"""The operator commands around the pipeline: replay, status and recommend, run through the
CLI against the real broker and PostgreSQL."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import Engine

from streamrec.cli.main import cli
from streamrec.config import Settings
from streamrec.storage import UnitOfWork
from tests.integration.pipeline_support import (
    consume_in_process,
    on_postgresql,
    pipeline_settings,
    read_topic,
    register_model,
    settings_environment,
)

LIMIT = 300


@on_postgresql
def test_replay_then_status_and_recommend_report_the_consumed_stream(
    kafka_settings: Settings, database_url: str, engine: Engine
) -> None:
    settings = pipeline_settings(kafka_settings, database_url)
    environment = settings_environment(settings)
    runner = CliRunner()

    replayed = runner.invoke(
        cli,
        ["replay", "--dataset", "synthetic", "--limit", str(LIMIT), "--rate", "5000"],
        env=environment,
        catch_exceptions=False,
    )
    assert replayed.exit_code == 0, replayed.output
    assert f"{LIMIT} interactions" in replayed.output
    interactions = read_topic(settings, settings.topics.interactions)
    assert len(interactions) == LIMIT
    # Keyed by user id: every user's events in one partition.
    partitions_of_user: dict[bytes, set[int]] = {}
    for record in interactions:
        partitions_of_user.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in partitions_of_user.values())
    items_produced = len(read_topic(settings, settings.topics.items))
    assert items_produced > 0

    before_consuming = runner.invoke(cli, ["status"], env=environment, catch_exceptions=False)
    assert "active model version: none" in before_consuming.output
    # Exact lag is not asserted: the local broker reports a partition's end offset as the
    # base offset of its last record batch plus one, so it undercounts.
    lag = int(re.search(r"total lag: (\d+)", before_consuming.output).group(1))
    assert 0 < lag <= LIMIT + items_produced

    register_model(engine, settings)
    consume_in_process(settings, engine)

    status = runner.invoke(cli, ["status"], env=environment, catch_exceptions=False)
    assert status.exit_code == 0, status.output
    assert f"records processed: {LIMIT + items_produced}" in status.output
    assert "total lag: 0" in status.output
    with UnitOfWork(engine) as uow:
        version = uow.models.active_version()
        users = uow.users.count(version)
    assert f"active model version: {version}" in status.output
    assert f"users with state: {users}" in status.output
    assert users > 0

    with UnitOfWork(engine) as uow:
        user_id = sorted(uow.interactions.user_ids(limit=1))[0]
        seen = {row.item_id for row in uow.interactions.for_users([user_id])[user_id]}
    shown = runner.invoke(cli, ["recommend", user_id], env=environment, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    listed = re.findall(r"│\s+\d+ │ (\S+)", shown.output)
    assert listed and not set(listed) & seen
    # The scores' meaning is stated: re-ranked by default, on no fixed scale.
    assert "score = retrieval + 0.5 log(vote), on no fixed scale" in " ".join(shown.output.split())
    as_json = runner.invoke(
        cli, ["recommend", user_id, "--json"], env=environment, catch_exceptions=False
    )
    assert f'"user_id":"{user_id}"' in as_json.output.replace(" ", "")
