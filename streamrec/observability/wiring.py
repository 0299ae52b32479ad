"""Connecting a consumer loop to its metrics and health: hooks and readiness checks.

``observed_hooks`` wraps the loop's hooks (``consumers.ConsumerHooks``) so that every stage,
idle poll and retry beats the heartbeat, every committed batch is counted (with the latency
of its records), lags and the partitions owned are tracked; hooks already given (a progress
display, a test's crash point) still run, after the metrics.

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

import logging
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from streamrec.observability.health import Heartbeat, Readiness, ReadinessCheck
from streamrec.observability.metrics import ConsumerMetrics
from streamrec.observability.server import ObservabilityServer

if TYPE_CHECKING:
    from consumers import ConsumerHooks

logger = logging.getLogger(__name__)


class AssignedPartitions:
    """The (topic, partition) pairs a consumer owns now; written by the loop's thread, read
    by the HTTP server's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: frozenset[tuple[str, int]] = frozenset()

    def __call__(self) -> frozenset[tuple[str, int]]:
        with self._lock:
            return self._current

    def replace(self, partitions: frozenset[tuple[str, int]]) -> frozenset[tuple[str, int]]:
        """Set the new assignment; returns the partitions no longer owned."""
        with self._lock:
            dropped, self._current = self._current - partitions, partitions
        return dropped


def observed_hooks(
    metrics: ConsumerMetrics,
    heartbeat: Heartbeat,
    hooks: ConsumerHooks | None = None,
    assigned: AssignedPartitions | None = None,
) -> ConsumerHooks:
    """Hooks that feed ``metrics``, ``heartbeat`` and ``assigned``, then call ``hooks``' own
    callbacks."""
    from consumers import ConsumerHooks

    given = hooks or ConsumerHooks()
    owned = assigned if assigned is not None else AssignedPartitions()

    def on_stage(stage: Any, batch_number: int) -> None:
        heartbeat.beat()
        _call(given.on_stage, stage, batch_number)

    def on_batch(result: Any, timing: Any, records: Any) -> None:
        metrics.observe_batch(result, timing, records)
        _call(given.on_batch, result, timing, records)

    def on_retry(error: BaseException, delay_seconds: float) -> None:
        heartbeat.beat()
        metrics.observe_retry(error, delay_seconds)
        _call(given.on_retry, error, delay_seconds)

    def on_idle() -> None:
        heartbeat.beat()
        _call(given.on_idle)

    def on_assignment(partitions: frozenset[tuple[str, int]]) -> None:
        heartbeat.beat()
        metrics.forget_partitions(owned.replace(partitions))
        _call(given.on_assignment, partitions)

    def on_lag(lags: dict[tuple[str, int], int]) -> None:
        metrics.set_lag(lags)
        _call(given.on_lag, lags)

    def on_dead_letter_refused(letter: Any, fallback: Any, error: BaseException) -> None:
        metrics.observe_refused_dead_letter(str(fallback))
        _call(given.on_dead_letter_refused, letter, fallback, error)

    return ConsumerHooks(
        on_stage=on_stage,
        on_batch=on_batch,
        on_retry=on_retry,
        on_idle=on_idle,
        on_assignment=on_assignment,
        on_lag=on_lag,
        on_dead_letter_refused=on_dead_letter_refused,
    )


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


def serve_if_configured(
    metrics: ConsumerMetrics | Any,
    heartbeat: Heartbeat,
    readiness: Readiness,
    port: int,
) -> ObservabilityServer | None:
    """Start the /metrics, /healthz and /readyz endpoint on ``port`` (0: not at all). A port
    that is taken is logged as an error and the process goes on without the endpoint: a
    metrics port must never stop the pipeline."""
    if port == 0:
        return None
    server = ObservabilityServer(metrics, heartbeat=heartbeat, readiness=readiness, port=port)
    try:
        return server.start()
    except OSError as error:
        logger.error("no metrics endpoint: cannot listen on port %d (%s)", port, error.strerror)
        return None
