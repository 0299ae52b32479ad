"""Connecting a consumer loop to its metrics and health: hooks and readiness checks.

``observed_hooks`` wraps the loop's hooks (``consumers.ConsumerHooks``) so that every stage,
idle poll and retry beats the heartbeat, and every committed batch is counted; hooks already
given (a progress display, a test's crash point) still run, after the metrics.

>>> from consumers import ConsumerHooks
>>> from streamrec.observability import ConsumerMetrics, Heartbeat
>>> calls = []
>>> hooks = observed_hooks(ConsumerMetrics(), Heartbeat(),
...                        ConsumerHooks(on_idle=lambda: calls.append("idle")))
>>> hooks.on_idle()
>>> calls
['idle']
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from streamrec.observability.health import Heartbeat, Readiness, ReadinessCheck
from streamrec.observability.metrics import ConsumerMetrics

if TYPE_CHECKING:
    from consumers import ConsumerHooks


def observed_hooks(
    metrics: ConsumerMetrics, heartbeat: Heartbeat, hooks: ConsumerHooks | None = None
) -> ConsumerHooks:
    """Hooks that feed ``metrics`` and ``heartbeat``, then call ``hooks``' own callbacks."""
    from consumers import ConsumerHooks

    given = hooks or ConsumerHooks()

    def on_stage(stage: Any, batch_number: int) -> None:
        heartbeat.beat()
        _call(given.on_stage, stage, batch_number)

    def on_batch(result: Any, timing: Any, *records: Any) -> None:
        # Loops that pass the batch's records as a third argument get latencies measured.
        metrics.observe_batch(result, timing, records[0] if records else ())
        _call(given.on_batch, result, timing, *records)

    def on_retry(error: BaseException, delay_seconds: float) -> None:
        heartbeat.beat()
        metrics.observe_retry(error, delay_seconds)
        _call(given.on_retry, error, delay_seconds)

    def on_idle() -> None:
        heartbeat.beat()
        _call(given.on_idle)

    return ConsumerHooks(on_stage=on_stage, on_batch=on_batch, on_retry=on_retry, on_idle=on_idle)


def consumer_readiness(
    assigned_partitions: Callable[[], Collection[Any]], engine: Engine
) -> Readiness:
    """Ready when the consumer owns at least one partition and the database answers."""
    from streamrec.storage import check_connection

    def partitions() -> str | None:
        return None if assigned_partitions() else "no partitions assigned"

    def database() -> str | None:
        check_connection(engine)  # raises with the masked URL and the driver's reason
        return None

    return Readiness(
        [ReadinessCheck("partitions", partitions), ReadinessCheck("database", database)]
    )


def _call(callback: Callable[..., None] | None, *arguments: Any) -> None:
    if callback is not None:
        callback(*arguments)
