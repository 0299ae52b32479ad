"""The consumer's apply step alone, in process: ``IngestService.apply`` on synthetic batches.

``streamrec bench pipeline`` measures the whole path (broker, consumer process, database,
recommendations topic); this measures only the database transaction of each batch, which is
where a consumer spends most of its time, without a broker and without process start-up. It
is the quick loop for working on that step: same events as the pipeline benchmark, same
batch size (``kafka.max_poll_records``), a scratch database (a schema of its own in the
configured PostgreSQL, else a temporary SQLite file), an untrained model of the configured
size. The first batch (model load, first item vectors) is applied before the clock starts.

    python -m streamrec.benchmarks.consumer_profile --events 20000 [--stored-users 10000]
    python -m streamrec.benchmarks.consumer_profile --events 20000 --profile  # pyinstrument

The machine is shared, so wall time swings between runs; the CPU time of this process
(the consumer's own Python and numpy work, without the database server's) is the steadier
number to compare changes by.

>>> rate = ApplyRate(events=2000, batches=2, seconds=0.5, cpu_seconds=0.25)
>>> rate.per_second, rate.cpu_milliseconds_per_event
(4000.0, 0.125)
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from streamrec.config import Settings
from streamrec.events import InteractionEvent
from streamrec.services.batch import SourceRecord


@dataclass(frozen=True, slots=True)
class ApplyRate:
    """``events`` applied in ``batches`` transactions in ``seconds`` of wall time and
    ``cpu_seconds`` of this process's CPU time (warm-up excluded)."""

    events: int
    batches: int
    seconds: float
    cpu_seconds: float

    @property
    def cpu_milliseconds_per_event(self) -> float:
        return 1000.0 * self.cpu_seconds / self.events if self.events else 0.0

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    @property
    def milliseconds_per_batch(self) -> float:
        return 1000.0 * self.seconds / self.batches if self.batches else 0.0


def source_records(events: Sequence[InteractionEvent], partitions: int) -> list[SourceRecord]:
    """The records a consumer would poll for ``events``: keyed by user, so each user's
    events land in one partition (by a stable hash), with consecutive offsets per partition."""
    from streamrec.wire import encode_interaction

    next_offsets = [0] * partitions
    records = []
    for event in events:
        partition = zlib.crc32(event.user_id.encode()) % partitions
        records.append(
            SourceRecord(
                "interactions",
                partition,
                next_offsets[partition],
                event.user_id.encode(),
                encode_interaction(event),
            )
        )
        next_offsets[partition] += 1
    return records


def measure_apply(
    settings: Settings, *, events: int, stored_users: int = 0, profiler: Any = None
) -> ApplyRate:
    """Apply ``events`` synthetic events (as ``streamrec bench pipeline`` makes them) in
    batches of ``kafka.max_poll_records`` on a scratch database, after loading
    ``stored_users`` users (PostgreSQL only). ``profiler`` (e.g. a pyinstrument Profiler)
    is started and stopped around the timed batches."""
    from streamrec.benchmarks.pipeline import SYNTHETIC_ITEMS, _register_model, benchmark_events
    from streamrec.benchmarks.stack import new_run_id, scratch_database
    from streamrec.services.ingest import IngestService
    from streamrec.storage import create_database_engine

    batch_size = settings.kafka.max_poll_records
    with scratch_database(settings, new_run_id()) as scratch:
        engine = create_database_engine(scratch.effective_database_url, timeouts=scratch.timeouts)
        try:
            version = _register_model(scratch, engine)
            if stored_users:
                from streamrec.benchmarks.population import load_population

                load_population(
                    engine,
                    version,
                    scratch,
                    users=stored_users,
                    interactions_per_user=5,
                    items=SYNTHETIC_ITEMS,
                    now=time.time(),
                )
            records = source_records(
                benchmark_events(events, stored_users), scratch.kafka.partitions
            )
            batches = [
                records[start : start + batch_size] for start in range(0, len(records), batch_size)
            ]
            service = IngestService(scratch, engine)
            service.apply(batches[0])
            timed = batches[1:]
            if profiler is not None:
                profiler.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            for batch in timed:
                service.apply(batch)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            if profiler is not None:
                profiler.stop()
        finally:
            engine.dispose()
    return ApplyRate(sum(len(batch) for batch in timed), len(timed), seconds, cpu_seconds)


@click.command()
@click.option("--events", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option(
    "--stored-users",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Users stored before the events (PostgreSQL only), as in bench pipeline.",
)
@click.option("--profile", is_flag=True, help="Print a pyinstrument profile of the batches.")
def main(events: int, stored_users: int, profile: bool) -> None:
    """Events per second of the consumer's apply step alone."""
    from consumers.process_setup import prepare_consumer_process

    prepare_consumer_process()  # as `streamrec consume` does
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
    rate = measure_apply(Settings(), events=events, stored_users=stored_users, profiler=profiler)
    click.echo(
        f"{rate.events:,} events in {rate.batches} batches, {rate.seconds:.2f} s: "
        f"{rate.per_second:,.0f} events/s, {rate.milliseconds_per_batch:,.0f} ms per batch, "
        f"{rate.cpu_milliseconds_per_event:.3f} ms of consumer CPU per event"
    )
    if profiler is not None:
        click.echo(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
