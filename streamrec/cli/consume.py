"""``streamrec consume``: run one consumer of the pipeline in this process.

Start as many as the interactions topic has partitions, on any machines: they form one
consumer group and split the partitions. ``--max-events`` and ``--idle-exit`` make a run
finite (tests, the demo, benchmarks); without them it runs until SIGTERM or Ctrl-C, which
finish the current batch, commit and leave the group.

A consumer assigned a partition whose stored offset lies outside the broker's log (a
recreated topic, retention that deleted unread records) stops with one line and a non-zero
status; ``--reset-offsets earliest|latest`` is the operator's choice of where to resume such
partitions, recorded in the log and the database (docs/operations.md, Runbook).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from consumers import Stage

# Exit status of a consumer killed on purpose by --exit-at, as `kill -9` would leave it.
KILLED_EXIT_STATUS = 137


@click.command(name="consume")
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after processing this many input records.",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0.0),
    default=None,
    metavar="SECONDS",
    help="Stop when no record arrived for this long (after joining the group).",
)
@click.option(
    "--reset-offsets",
    "reset_offsets",
    type=click.Choice(["earliest", "latest"]),
    default=None,
    help="Resume partitions whose stored offset lies outside the log at the log's start "
    "(earliest) or end (latest); other partitions are not moved. Without it such a "
    "partition stops the consumer.",
)
@click.option(
    "--exit-at",
    default=None,
    hidden=True,
    metavar="STAGE:BATCH",
    help="Testing only: die without cleanup at STAGE (polled, stored, published, committed) "
    "of batch number BATCH, as a kill -9 would.",
)
@click.pass_obj
def command(
    settings: Settings,
    max_events: int | None,
    idle_exit: float | None,
    reset_offsets: str | None,
    exit_at: str | None,
) -> None:
    """Consume interactions and item updates; publish fresh recommendations."""
    from consumers import ConsumerHooks, run_consumer
    from consumers.process_setup import prepare_consumer_process
    from streamrec.kafka import ensure_topics, streamrec_topic_names
    from streamrec.observability import ConsumerMetrics, Heartbeat, configure_logging
    from streamrec.observability.wiring import (
        AssignedPartitions,
        consumer_readiness,
        observed_hooks,
        serve_if_configured,
    )
    from streamrec.offsets import OffsetResetChoice
    from streamrec.services.ingest import IngestService
    from streamrec.storage import check_connection, create_database_engine

    prepare_consumer_process()
    # kafka-python's INFO narration is silenced there; its warnings and errors still show.
    configure_logging(settings.observability)
    metrics, heartbeat, assigned = ConsumerMetrics(), Heartbeat(), AssignedPartitions()
    hooks = observed_hooks(
        metrics, heartbeat, ConsumerHooks(on_stage=_exit_at(exit_at) if exit_at else None), assigned
    )
    engine = create_database_engine(settings.effective_database_url)
    server = None
    try:
        check_connection(engine)
        server = serve_if_configured(
            metrics,
            heartbeat,
            consumer_readiness(assigned, engine),
            settings.observability.metrics_port,
        )
        ensure_topics(settings, streamrec_topic_names(settings))
        summary = run_consumer(
            settings,
            IngestService(settings, engine),
            max_records=max_events,
            idle_exit_seconds=idle_exit,
            hooks=hooks,
            offset_reset=None if reset_offsets is None else OffsetResetChoice(reset_offsets),
        )
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
    counters = summary.counters
    click.echo(
        f"consumed {counters.records} records in {summary.batches} batches "
        f"({summary.stopped_because}): {counters.interactions_applied} interactions applied, "
        f"{counters.interactions_ignored} ignored, {counters.items_upserted} items, "
        f"{counters.dead_letters} dead letters, "
        f"{counters.records_already_applied} already applied earlier"
    )


def _exit_at(specification: str) -> Callable[[Stage, int], None]:
    from consumers import Stage

    stage_name, _, batch_text = specification.partition(":")
    try:
        stage, batch = Stage(stage_name), int(batch_text)
    except ValueError:
        stages = ", ".join(stage.value for stage in Stage)
        raise click.BadParameter(f"expected STAGE:BATCH with STAGE one of {stages}") from None

    def exit_if_due(current_stage: Stage, batch_number: int) -> None:
        if (current_stage, batch_number) == (stage, batch):
            os._exit(KILLED_EXIT_STATUS)

    return exit_if_due
