"""Throughput as the operator sees it: records the consumers applied per second, from the
stored offsets that every status read sees.

The database keeps where each partition stands, not when it got there, so the rate is the
change of the records below the stored offsets between two reads of this process, over at
most the last ``window_seconds``. The first read has nothing to compare with (None); a
drop (an operator reset the offsets) starts again.

>>> meter = ThroughputMeter(window_seconds=60.0)
>>> meter.observe(0.0, 1_000) is None
True
>>> meter.observe(10.0, 6_000)
500.0
>>> meter.observe(20.0, 100) is None  # offsets moved back
True
"""

from __future__ import annotations

import threading
from collections import deque


class ThroughputMeter:
    def __init__(self, window_seconds: float = 60.0) -> None:
        self._window = window_seconds
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def observe(self, now: float, records: int) -> float | None:
        """Record that ``records`` lie below the stored offsets at ``now`` (monotonic
        seconds); return records per second since the oldest sample in the window."""
        with self._lock:
            if self._samples and records < self._samples[-1][1]:
                self._samples.clear()
            self._samples.append((now, records))
            # Keep one sample older than the window, so a slow reader still gets a rate.
            while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
                self._samples.popleft()
            first_time, first_records = self._samples[0]
            if now <= first_time:
                return None
            return (records - first_records) / (now - first_time)
