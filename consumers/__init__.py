"""The consumer process: a thin Kafka loop over ``streamrec.services``.

``TransactionalBatchLoop`` (``consumers.batch_loop``) polls, hands each batch to a handler
that applies it in one database transaction and returns the messages to send as data, sends
them, records their acknowledgement and commits the Kafka offsets. ``InteractionConsumer``
is that loop over the interactions and items topics with the ingest service as its handler.
Run it with ``streamrec consume`` or ``python -m consumers`` (both through
``consumers.wiring``); docs/operations.md explains the delivery guarantees.
"""

from consumers.batch_loop import BatchHandler, TransactionalBatchLoop
from consumers.interaction_consumer import (
    ConsumerHooks,
    InteractionConsumer,
    RunSummary,
    Stage,
    run_consumer,
)

__all__ = [
    "BatchHandler",
    "ConsumerHooks",
    "InteractionConsumer",
    "RunSummary",
    "Stage",
    "TransactionalBatchLoop",
    "run_consumer",
]
