"""The consumer process put together: settings in; the database, the Kafka clients, the ingest
service, metrics and health wired; the loop run until it stops.

``run_consumer_process`` is the one composition of a consumer: ``streamrec consume`` and
``python -m consumers`` both call it, so the two run the same process. It sets the process
up for a batch loop (one torch and one BLAS thread, a tuned garbage collector:
``consumers.process_setup``), configures logging, opens the database and checks it answers,
serves /metrics, /healthz and /readyz when ``observability.metrics_port`` is set, creates the
topics if they are missing, and runs ``consumers.interaction_consumer.run_consumer`` over
``streamrec.services.ingest.IngestService`` until SIGTERM, SIGINT, ``max_records`` or
``idle_exit_seconds``. The database and the metrics endpoint are closed on the way out,
whatever ended the run.
"""

from __future__ import annotations

from consumers.interaction_consumer import RunSummary
from streamrec.config import Settings
from streamrec.offsets import OffsetResetChoice


def run_consumer_process(
    settings: Settings,
    *,
    max_records: int | None = None,
    idle_exit_seconds: float | None = None,
    offset_reset: OffsetResetChoice | None = None,
) -> RunSummary:
    """Run one consumer of the pipeline in this process (from its main thread: it handles
    SIGTERM and SIGINT) and say what it did. ``offset_reset``: where to resume partitions
    whose stored offset lies outside the broker's log (the operator's ``--reset-offsets``)."""
    from consumers.interaction_consumer import run_consumer
    from consumers.process_setup import prepare_consumer_process
    from streamrec.kafka import ensure_topics, streamrec_topic_names
    from streamrec.observability import ConsumerMetrics, Heartbeat, configure_logging
    from streamrec.observability.wiring import (
        AssignedPartitions,
        consumer_readiness,
        observed_hooks,
        serve_if_configured,
    )
    from streamrec.services.ingest import IngestService
    from streamrec.storage import check_connection, create_database_engine

    prepare_consumer_process()
    # kafka-python's INFO narration is silenced there; its warnings and errors still show.
    configure_logging(settings.observability)
    metrics, heartbeat, assigned = (
        ConsumerMetrics(),
        Heartbeat(timeout_seconds=settings.timeouts.liveness_seconds),
        AssignedPartitions(),
    )
    hooks = observed_hooks(metrics, heartbeat, assigned=assigned)
    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
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
        return run_consumer(
            settings,
            IngestService(settings, engine),
            max_records=max_records,
            idle_exit_seconds=idle_exit_seconds,
            hooks=hooks,
            offset_reset=offset_reset,
        )
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
