"""The in-process apply benchmark: it applies every event it times, on a scratch database."""

from __future__ import annotations

import doctest
from pathlib import Path

from streamrec.benchmarks import consumer_profile
from streamrec.benchmarks.consumer_profile import measure_apply, source_records
from streamrec.benchmarks.pipeline import benchmark_events
from streamrec.config import Settings


def test_records_keep_each_users_events_in_one_partition_with_consecutive_offsets() -> None:
    records = source_records(benchmark_events(300, 0), partitions=3)
    partition_of_user: dict[bytes | None, int] = {}
    for record in records:
        assert partition_of_user.setdefault(record.key, record.partition) == record.partition
    for partition in range(3):
        offsets = [record.offset for record in records if record.partition == partition]
        assert offsets == list(range(len(offsets)))


def test_every_event_after_the_warm_up_batch_is_timed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, kafka={"max_poll_records": 400})
    started_and_stopped: list[str] = []

    class Recorder:
        def start(self) -> None:
            started_and_stopped.append("start")

        def stop(self) -> None:
            started_and_stopped.append("stop")

    rate = measure_apply(settings, events=1_000, profiler=Recorder())

    # 1,000 events in batches of 400: the first batch warms up, the other two are timed.
    assert (rate.events, rate.batches) == (600, 2)
    assert rate.seconds > 0 and started_and_stopped == ["start", "stop"]


def test_doctests() -> None:
    assert doctest.testmod(consumer_profile).failed == 0
