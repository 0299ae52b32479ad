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

import click

from streamrec.config import Settings


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
@click.pass_obj
def command(
    settings: Settings,
    max_events: int | None,
    idle_exit: float | None,
    reset_offsets: str | None,
) -> None:
    """Consume interactions and item updates; publish fresh recommendations."""
    from consumers import run_consumer
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
    hooks = observed_hooks(metrics, heartbeat, assigned=assigned)
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
