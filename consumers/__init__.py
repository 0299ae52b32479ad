"""The consumer process: a thin Kafka loop over ``streamrec.services``.

``InteractionConsumer`` polls the interactions and items topics, hands each batch to the
ingest service (one database transaction), publishes what the batch produced, and commits
the Kafka offsets. Run it with ``streamrec consume``; docs/operations.md explains the
delivery guarantees.
"""

from consumers.interaction_consumer import (
    ConsumerHooks,
    InteractionConsumer,
    RunSummary,
    Stage,
    run_consumer,
)

__all__ = ["ConsumerHooks", "InteractionConsumer", "RunSummary", "Stage", "run_consumer"]
