"""The real consumer loop (consumers.InteractionConsumer over the ingest service) in a thread.

The demo and the prequential benchmark run it beside their own work in one process; its
Kafka clients are built and used inside the thread only. ``stop()`` asks the loop to finish
its batch, commit and leave the group, then waits for it; an error in the loop is raised
again by ``stop()``.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from streamrec.config import Settings
from streamrec.observability import ConsumerMetrics, Heartbeat

if TYPE_CHECKING:
    from consumers import ConsumerHooks, InteractionConsumer, RunSummary

# Long enough for the loop to finish a batch and leave the group.
STOP_TIMEOUT_SECONDS = 60.0


class ConsumerThread:
    """``with ConsumerThread(settings, engine) as consumer: ...`` runs one consumer."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        metrics: ConsumerMetrics | None = None,
        hooks: ConsumerHooks | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics or ConsumerMetrics()
        self.heartbeat = Heartbeat()
        self._hooks = hooks
        self._ready = threading.Event()
        self._loop: InteractionConsumer | None = None
        self._thread = threading.Thread(target=self._run, name="streamrec-consumer", daemon=True)
        self._error: BaseException | None = None
        self.summary: RunSummary | None = None

    def start(self) -> ConsumerThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> RunSummary | None:
        if self._loop is not None:
            self._loop.request_stop()
        self._thread.join(STOP_TIMEOUT_SECONDS)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.summary

    def __enter__(self) -> ConsumerThread:
        return self.start()

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exception is None:
            self.stop()
            return
        # Already failing: stop the loop, but let the original error through.
        with contextlib.suppress(Exception):
            self.stop()

    def _run(self) -> None:
        from consumers import InteractionConsumer
        from streamrec.kafka import create_consumer, create_producer
        from streamrec.observability.wiring import observed_hooks
        from streamrec.services.ingest import IngestService

        producer = None
        try:
            producer = create_producer(self.settings)
            self._loop = InteractionConsumer(
                self.settings,
                IngestService(self.settings, self.engine),
                create_consumer(self.settings, group_id=self.settings.kafka.consumer_group),
                producer,
                hooks=observed_hooks(self.metrics, self.heartbeat, self._hooks),
            )
        except BaseException as error:
            self._error = error
            self._ready.set()
            if producer is not None:
                producer.close()
            return
        self._ready.set()
        try:
            self.summary = self._loop.run()
        except BaseException as error:
            self._error = error
        finally:
            producer.close()
