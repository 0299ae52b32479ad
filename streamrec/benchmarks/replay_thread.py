"""Producing a replay in the background (``streamrec replay``'s produce_dataset in a thread),
so that the consumer and an observer can work while events arrive, as they would live.

``cancel()`` makes the thread stop at its next event (Ctrl-C in the demo); ``join()`` waits
and raises the producer's error, if any.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from streamrec.config import Settings
from streamrec.events import InteractionEvent, ItemEvent

CLOSE_TIMEOUT_SECONDS = 10.0


class _Cancelled(Exception):
    """Raised inside the producing loop to end it early."""


class ReplayThread:
    def __init__(
        self,
        settings: Settings,
        items: Mapping[str, ItemEvent],
        events: Iterable[InteractionEvent],
        *,
        rate: float | None = None,
    ) -> None:
        self._settings = settings
        self._items = items
        self._events = events
        self._rate = rate
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self.produced = 0
        self._thread = threading.Thread(target=self._run, name="streamrec-replay", daemon=True)

    def start(self) -> ReplayThread:
        self._thread.start()
        return self

    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _progress(self, count: int) -> None:
        self.produced += count
        if self._cancel.is_set():
            raise _Cancelled

    def _run(self) -> None:
        from streamrec.cli.replay import produce_dataset
        from streamrec.kafka import create_producer

        try:
            producer = create_producer(self._settings)
        except BaseException as error:
            self._error = error
            return
        try:
            produce_dataset(
                producer,
                self._settings,
                self._items,
                self._events,
                rate=self._rate,
                on_progress=self._progress,
            )
        except _Cancelled:
            pass
        except BaseException as error:
            self._error = error
        finally:
            producer.close(timeout=CLOSE_TIMEOUT_SECONDS)
