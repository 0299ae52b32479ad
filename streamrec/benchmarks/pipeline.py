"""``streamrec bench pipeline``: speed and scale of Kafka -> consumer -> PostgreSQL ->
recommendations topic, beside this machine's raw limits, in one run.

Phases, each on fresh topics and a fresh PostgreSQL schema (dropped afterwards):

1. raw limits: kafka-python produce and consume rates through the same broker, and the
   database's batched upsert rate with the pipeline's own statement;
2. sustained throughput: ``--events`` synthetic events are produced first, then
   ``--consumers`` ``streamrec consume`` processes drain the backlog; the rate is the slope of
   the offsets they store between 10% and 90% of the backlog;
3. latency: events offered at ``--rate`` per second for ``--latency-seconds``, each
   measured from its Kafka timestamp to that of the first recommendation message that
   answered it (read back from the topics); then the same load through the broker to a bare
   kafka-python consumer, the broker's and client's share of it;
4. sustained throughput again with ``--populations`` users already stored (users, states,
   interactions, cluster statistics), half of the events from stored users and half from
   new ones: the per-event cost must not grow with the population.

The model is an untrained one of the configured size: the cost of an event does not depend
on what the weights learned. Results: bench/results/pipeline[-<N>-consumers][-<what else
differs>].{json,md,png} (``streamrec.benchmarks.results``), and the "Pipeline" section of
``--doc`` (docs/performance.md) when given.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from streamrec.benchmarks.results import output_options
from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.events import InteractionEvent

TARGET_EVENTS_PER_SECOND = 5_000
GOAL_EVENTS_PER_SECOND = 20_000
TARGET_P99_SECONDS = 1.0
# Per-event cost counts as flat when the largest population costs at most this much more.
FLAT_COST_RATIO = 1.25
SYNTHETIC_ITEMS = 1_000
STORED_USER_SHARE = 0.5
WARM_UP_EVENTS = 200
# Parts of the latency phase whose p50 and p99 are plotted in order (one per second at the
# default 20 s).
LATENCY_WINDOWS = 20
# Settings besides the model's that change what the pipeline benchmark measures.
MEASURED_PIPELINE_SETTINGS = (
    "kafka.max_poll_records",
    "kafka.partitions",
    "timeouts.kafka_fetch_max_wait_ms",
    "consumer.user_cache_size",
)
Announce = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Sustained:
    stored_users: int
    events: int
    events_per_second: float | None
    load_seconds: float = 0.0

    @property
    def milliseconds_per_event(self) -> float | None:
        return None if not self.events_per_second else 1000.0 / self.events_per_second


@dataclass(frozen=True, slots=True)
class Latency:
    offered_per_second: float
    produced_per_second: float
    events: int
    answered: int
    seconds: dict[str, float]
    # The same offered load through the broker to a bare kafka-python consumer.
    broker_seconds: dict[str, float] = field(default_factory=dict)
    # From the consumers' own /metrics: mean seconds per batch stage, mean records per batch.
    batch_stage_seconds: dict[str, float] = field(default_factory=dict)
    mean_batch_records: float | None = None
    # p50 and p99 of consecutive parts of the measured events, in order of production.
    over_time: list[dict[str, float]] = field(default_factory=list)


@dataclass
class PipelineResults:
    consumers: int
    raw: list[dict[str, Any]] = field(default_factory=list)
    sustained: list[Sustained] = field(default_factory=list)
    latency: Latency | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from streamrec.benchmarks.results import machine_description

        return {
            "benchmark": "pipeline",
            "consumers": self.consumers,
            "raw_limits": self.raw,
            "sustained": [
                {**asdict(point), "milliseconds_per_event": point.milliseconds_per_event}
                for point in self.sustained
            ],
            "latency": None if self.latency is None else asdict(self.latency),
            "targets": targets(self),
            "settings": self.settings,
            "machine": machine_description(),
        }


def benchmark_events(count: int, stored_users: int, seed: int = 0) -> list[InteractionEvent]:
    """``count`` synthetic events in time order; with ``stored_users``, about half of the
    users are replaced by stored population users (chosen by a hash of the id, so all of a
    user's events go to the same stored user)."""
    from streamrec.benchmarks.population import population_user
    from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream

    stream = SyntheticStream(
        SyntheticConfig(users=max(1, count // 20), items=SYNTHETIC_ITEMS, seed=seed)
    )
    events = list(islice(stream.events(), count))
    if not stored_users:
        return events
    renamed = []
    for event in events:
        digest = zlib.crc32(event.user_id.encode())
        if digest % 1000 < STORED_USER_SHARE * 1000:
            user_id = population_user(1 + digest % stored_users)
        else:
            user_id = f"new-{event.user_id}"
        renamed.append(replace(event, user_id=user_id))
    return renamed


def run_pipeline_benchmark(
    settings: Settings,
    *,
    events: int,
    rate: float,
    latency_seconds: float,
    populations: Sequence[int],
    interactions_per_user: int,
    consumers: int,
    announce: Announce = print,
) -> PipelineResults:
    from streamrec.benchmarks.stack import running_broker

    url = settings.database_url
    if url is None or make_url(url.get_secret_value()).get_backend_name() != "postgresql":
        raise UserFacingError(
            "bench pipeline measures PostgreSQL: set STREAMREC_DATABASE_URL to a "
            "postgresql+psycopg:// URL (a scratch schema is created and dropped)"
        )
    results = PipelineResults(
        consumers=consumers,
        settings={
            "events": events,
            "offered_rate": rate,
            "latency_seconds": latency_seconds,
            "interactions_per_stored_user": interactions_per_user,
            "partitions": settings.kafka.partitions,
            "max_poll_records": settings.kafka.max_poll_records,
            "model": settings.model.model_dump(),
            "serving": settings.serving.model_dump(),
        },
    )
    with running_broker(settings, announce) as broker:
        base = broker.settings
        announce("raw limits: kafka-python and the database")
        with _phase(base) as (phase, engine):
            sample = benchmark_events(events, 0, seed=1)
            results.raw = [
                asdict(rate) | {"per_second": rate.per_second}
                for rate in _raw(phase, engine, sample)
            ]
        announce("sustained throughput, empty database")
        with _phase(base) as (phase, engine):
            results.sustained.append(
                _sustained(phase, engine, events, 0, interactions_per_user, consumers)
            )
        announce(f"  {_rate_text(results.sustained[-1].events_per_second)}")
        announce(f"latency at {rate:,.0f} events/s offered for {latency_seconds:g} s")
        with _phase(base) as (phase, engine):
            results.latency = _latency(phase, engine, rate, latency_seconds, consumers)
        announce(f"broker latency at {rate:,.0f} events/s to a bare kafka-python consumer")
        with _phase(base) as (phase, _):
            results.latency = replace(
                results.latency,
                broker_seconds=_broker_latency(phase, rate, latency_seconds),
            )
        # Last: loading and dropping a million users keeps the database busy for a while
        # afterwards, which must not be the latency phase's load.
        for stored_users in populations:
            announce(f"sustained throughput, {stored_users:,} users stored before")
            with _phase(base) as (phase, engine):
                results.sustained.append(
                    _sustained(
                        phase, engine, events, stored_users, interactions_per_user, consumers
                    )
                )
            announce(f"  {_rate_text(results.sustained[-1].events_per_second)}")
    return results


@contextlib.contextmanager
def _phase(base: Settings) -> Iterator[tuple[Settings, Engine]]:
    """Fresh topics and a fresh schema, with the engine on it."""
    from streamrec.benchmarks.stack import isolated_topics, new_run_id, scratch_database
    from streamrec.kafka import ensure_topics, streamrec_topic_names
    from streamrec.storage import create_database_engine

    run_id = new_run_id()
    with scratch_database(isolated_topics(base, run_id), run_id) as phase:
        ensure_topics(phase, streamrec_topic_names(phase))
        engine = create_database_engine(phase.effective_database_url, timeouts=phase.timeouts)
        try:
            yield phase, engine
        finally:
            engine.dispose()


def _raw(settings: Settings, engine: Engine, events: Sequence[InteractionEvent]) -> list[Any]:
    from streamrec.benchmarks.raw_limits import database_insert_rate, kafka_rates

    return [
        *kafka_rates(settings, events),
        database_insert_rate(engine, events, settings.kafka.max_poll_records),
    ]


def _register_model(settings: Settings, engine: Engine) -> int:
    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.features import FeatureSchema
    from streamrec.state import ModelStatus, ModelVersion
    from streamrec.storage import UnitOfWork

    config, weights = EfficientRec.new(settings.model, FeatureSchema()).to_version()
    with UnitOfWork(engine) as uow:
        version = uow.models.add(
            ModelVersion(None, ModelStatus.ACTIVE, config, weights, reason="benchmark")
        )
        uow.commit()
    return version


def _produce(settings: Settings, events: Sequence[InteractionEvent], rate: float | None) -> float:
    """Produce ``events`` (at ``rate`` per second if given); returns the seconds it took."""
    from streamrec.benchmarks.replay_thread import ReplayThread

    started = time.perf_counter()
    ReplayThread(settings, {}, events, rate=rate).start().join()
    return time.perf_counter() - started


def _sustained(
    settings: Settings,
    engine: Engine,
    count: int,
    stored_users: int,
    interactions_per_user: int,
    consumers: int,
) -> Sustained:
    from streamrec.benchmarks.consumer_processes import ConsumerProcesses
    from streamrec.benchmarks.population import load_population
    from streamrec.benchmarks.throughput import sustained_rate, watch_stored_offsets

    version = _register_model(settings, engine)
    load_seconds = 0.0
    if stored_users:
        load = load_population(
            engine,
            version,
            settings,
            users=stored_users,
            interactions_per_user=interactions_per_user,
            items=SYNTHETIC_ITEMS,
            now=time.time(),
        )
        load_seconds = load.seconds
    events = benchmark_events(count, stored_users)
    _produce(settings, events, rate=None)
    with ConsumerProcesses(settings, consumers) as running:
        samples = watch_stored_offsets(
            engine,
            settings.kafka.consumer_group,
            settings.topics.interactions,
            len(events),
            timeout_seconds=120 + len(events) / 50,
            check=lambda: _raise_if_failed(running),
        )
    return Sustained(stored_users, len(events), sustained_rate(samples, len(events)), load_seconds)


def _latency(
    settings: Settings, engine: Engine, rate: float, seconds: float, consumers: int
) -> Latency:
    from streamrec.benchmarks.consumer_processes import ConsumerProcesses
    from streamrec.benchmarks.throughput import (
        percentiles,
        percentiles_by_window,
        watch_stored_offsets,
    )
    from streamrec.benchmarks.topic_tap import PrequentialTap

    _register_model(settings, engine)
    events = benchmark_events(WARM_UP_EVENTS + int(rate * seconds), 0, seed=2)
    warm_up, measured = events[:WARM_UP_EVENTS], events[WARM_UP_EVENTS:]
    group, topic = settings.kafka.consumer_group, settings.topics.interactions
    with ConsumerProcesses(settings, consumers, metrics=True) as running:
        # The group is formed and the model loaded before the clock starts.
        _produce(settings, warm_up, rate=None)
        watch_stored_offsets(
            engine,
            group,
            topic,
            len(warm_up),
            timeout_seconds=120,
            check=lambda: _raise_if_failed(running),
        )
        produce_seconds = _produce(settings, measured, rate=rate)
        watch_stored_offsets(
            engine,
            group,
            topic,
            len(events),
            timeout_seconds=120 + len(measured) / 50,
            check=lambda: _raise_if_failed(running),
        )
        stages, batch_records = batch_profile(running.metrics_urls)
    tap = PrequentialTap(
        settings, {event.event_id: n for n, event in enumerate(measured)}, measure_latency=True
    )
    tap.finish()
    latencies = tap.latencies()
    return Latency(
        offered_per_second=rate,
        produced_per_second=len(measured) / produce_seconds,
        events=len(measured),
        answered=len(latencies),
        seconds=percentiles(latencies),
        over_time=percentiles_by_window(latencies, LATENCY_WINDOWS),
        batch_stage_seconds=stages,
        mean_batch_records=batch_records,
    )


def batch_profile(metrics_urls: Sequence[str]) -> tuple[dict[str, float], float | None]:
    """Mean seconds of each batch stage and mean records per batch, summed over consumers'
    /metrics pages (warm-up batches included)."""
    from urllib.request import urlopen

    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    for url in metrics_urls:
        with urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                stage = sample.labels.get("stage", "")
                key = f"{sample.name}:{stage}"
                sums[key] = sums.get(key, 0.0) + sample.value
    stages = {}
    for stage in ("apply", "publish", "commit", "total"):
        count = sums.get(f"streamrec_batch_latency_seconds_count:{stage}", 0.0)
        if count:
            stages[stage] = sums[f"streamrec_batch_latency_seconds_sum:{stage}"] / count
    batches = sums.get("streamrec_batch_size_records_count:", 0.0)
    records = sums.get("streamrec_batch_size_records_sum:", 0.0)
    return stages, (records / batches if batches else None)


def _broker_latency(settings: Settings, rate: float, seconds: float) -> dict[str, float]:
    from streamrec.benchmarks.raw_limits import kafka_latencies
    from streamrec.benchmarks.throughput import percentiles

    events = benchmark_events(int(rate * seconds), 0, seed=3)
    return percentiles(kafka_latencies(settings, events, rate))


def _raise_if_failed(running: Any) -> None:
    problem = running.failed()
    if problem is not None:
        raise UserFacingError(problem)


def _rate_text(per_second: float | None) -> str:
    return "did not reach a steady state" if per_second is None else f"{per_second:,.0f} events/s"


def targets(results: PipelineResults) -> list[dict[str, Any]]:
    """Each pipeline target with the measured value and whether it is met."""
    found: list[dict[str, Any]] = []
    empty = next((point for point in results.sustained if point.stored_users == 0), None)
    if empty is not None:
        rate = empty.events_per_second or 0.0
        found.append(
            {
                "target": f"at least {TARGET_EVENTS_PER_SECOND:,} events/s end to end "
                f"(goal {GOAL_EVENTS_PER_SECOND:,})",
                "measured": _rate_text(empty.events_per_second),
                "met": rate >= TARGET_EVENTS_PER_SECOND,
            }
        )
    if results.latency is not None:
        p99 = results.latency.seconds.get("p99")
        found.append(
            {
                "target": f"p99 event-to-recommendation latency at most {TARGET_P99_SECONDS:g} s "
                f"at {results.latency.offered_per_second:,.0f} events/s",
                "measured": "-" if p99 is None else f"{p99:.3f} s",
                "met": p99 is not None
                and p99 <= TARGET_P99_SECONDS
                and results.latency.answered == results.latency.events,
            }
        )
    stored = [
        point for point in results.sustained if point.stored_users and point.events_per_second
    ]
    if len(stored) >= 2:
        smallest, largest = stored[0], stored[-1]
        ratio = (largest.milliseconds_per_event or 0.0) / (smallest.milliseconds_per_event or 1.0)
        found.append(
            {
                "target": f"per-event cost flat from {smallest.stored_users:,} to "
                f"{largest.stored_users:,} stored users (within {FLAT_COST_RATIO - 1:.0%})",
                "measured": f"x{ratio:.2f}",
                "met": ratio <= FLAT_COST_RATIO,
            }
        )
    return found


def markdown_report(results: PipelineResults) -> str:
    from streamrec.benchmarks.results import markdown_table, shown

    rows = [
        [raw["what"], f"{raw['per_second']:,.0f} /s", f"{raw['count']:,}"] for raw in results.raw
    ]
    for point in results.sustained:
        rows.append(
            [
                f"end to end, {results.consumers} consumer(s), "
                f"{point.stored_users:,} users stored before",
                _rate_text(point.events_per_second).replace(" events/s", " events/s")
                + f" ({shown(point.milliseconds_per_event, 2)} ms/event)",
                f"{point.events:,}",
            ]
        )
    text = markdown_table(["measurement", "rate", "records"], rows)
    latency = results.latency
    if latency is not None:
        text += (
            f"\nEvent-to-recommendation latency at {latency.offered_per_second:,.0f} events/s "
            f"offered ({latency.produced_per_second:,.0f}/s achieved by the producer, "
            f"{latency.events:,} events, {latency.answered:,} answered): "
            + _milliseconds(latency.seconds)
            + ". The same load through the broker to a bare kafka-python consumer with the "
            f"pipeline's fetch settings (the broker's share of it): "
            f"{_milliseconds(latency.broker_seconds) or 'not measured'}.\n"
        )
        if latency.batch_stage_seconds and latency.mean_batch_records is not None:
            text += (
                f"Meanwhile the consumers' batches held {latency.mean_batch_records:,.0f} records "
                "on average and took "
                + ", ".join(
                    f"{stage} {seconds * 1000:,.0f} ms"
                    for stage, seconds in latency.batch_stage_seconds.items()
                )
                + " (means, from their /metrics).\n"
            )
    verdicts = [
        [target["target"], target["measured"], "met" if target["met"] else "**not yet**"]
        for target in targets(results)
    ]
    text += "\n" + markdown_table(["target", "measured", ""], verdicts)
    return text


def _milliseconds(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value * 1000:,.0f} ms" for name, value in seconds.items())


def plot(results: PipelineResults, path: Path) -> Path:
    """Rates beside the raw limits (log scale), and per-event cost against stored users."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import FuncFormatter

    over_time = [] if results.latency is None else results.latency.over_time
    panels = 3 if over_time else 2
    figure, axes = pyplot.subplots(1, panels, figsize=(6.5 * panels, 5), layout="constrained")
    rates, cost = axes[0], axes[1]
    labels = [raw["what"].replace(", ", "\n") for raw in results.raw]
    values = [raw["per_second"] for raw in results.raw]
    for point in results.sustained:
        labels.append(f"pipeline\n{point.stored_users:,} stored")
        values.append(point.events_per_second or 0.0)
    colours = ["tab:grey"] * len(results.raw) + ["tab:blue"] * len(results.sustained)
    rates.barh(labels, values, color=colours)
    rates.set(xlabel="records per second", title="pipeline vs raw limits")
    rates.axvline(
        TARGET_EVENTS_PER_SECOND,
        color="tab:red",
        linestyle="--",
        linewidth=0.8,
        label=f"target {TARGET_EVENTS_PER_SECOND:,} events/s",
    )
    rates.legend(loc="lower right", fontsize="small")
    rates.tick_params(axis="y", labelsize="x-small")
    # 100,000 rather than 100000, turned: five-digit rates ran into each other.
    rates.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    rates.tick_params(axis="x", labelrotation=30)
    measured = [point for point in results.sustained if point.milliseconds_per_event]
    cost.plot(
        [max(point.stored_users, 1) for point in measured],
        [point.milliseconds_per_event for point in measured],
        marker="o",
    )
    cost.set(
        xscale="log",
        xlabel="users stored before (0 drawn at 1)",
        ylabel="ms per event (wall clock)",
        title="per-event cost as the population grows",
        ylim=(0, None),
    )
    if over_time:
        latency = axes[2]
        parts = range(1, len(over_time) + 1)
        for name in ("p50", "p99"):
            latency.plot(parts, [part[name] for part in over_time], marker=".", label=name)
        latency.axhline(
            TARGET_P99_SECONDS,
            color="tab:red",
            linestyle="--",
            linewidth=0.8,
            label=f"target p99 {TARGET_P99_SECONDS:g} s",
        )
        latency.set(
            xlabel=f"part of the measured events, in order (of {len(over_time)})",
            ylabel="event-to-recommendation seconds",
            title="latency over the run",
            ylim=(0, None),
        )
        latency.legend()
    for axis in axes:
        axis.grid(alpha=0.3)
    if results.latency is not None and results.latency.seconds:
        summary = ", ".join(
            f"{name} {value * 1000:,.0f} ms" for name, value in results.latency.seconds.items()
        )
        figure.suptitle(f"latency at {results.latency.offered_per_second:,.0f} events/s: {summary}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def _integers(_: click.Context, __: click.Parameter, value: str) -> list[int]:
    try:
        numbers = [int(float(part)) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if any(number < 1 for number in numbers):
        raise click.BadParameter("populations must be positive, e.g. 10000,1000000")
    return sorted(numbers)


@click.command(name="pipeline")
@click.option("--events", type=click.IntRange(min=1000), default=20_000, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1.0), default=1_000.0, show_default=True)
@click.option("--latency-seconds", type=click.FloatRange(min=1.0), default=20.0, show_default=True)
@click.option(
    "--populations",
    callback=_integers,
    default="10000,1000000",
    show_default=True,
    help="Stored users before the events, comma-separated (1e6 takes about a minute to load).",
)
@click.option("--interactions-per-user", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--consumers", type=click.IntRange(min=1, max=16), default=1, show_default=True)
@output_options(section="the 'Pipeline' section")
@click.pass_obj
def command(
    settings: Settings,
    events: int,
    rate: float,
    latency_seconds: float,
    populations: list[int],
    interactions_per_user: int,
    consumers: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Throughput, latency and per-event cost of the pipeline on PostgreSQL."""
    from rich.console import Console

    from streamrec.benchmarks.results import (
        changed_settings,
        replace_section,
        result_stem,
        run_differences,
        write_results,
    )

    console = Console()
    differs = run_differences(
        changed_settings(settings, MEASURED_PIPELINE_SETTINGS), leave_out={"consumers"}
    )
    results = run_pipeline_benchmark(
        settings,
        events=events,
        rate=rate,
        latency_seconds=latency_seconds,
        populations=populations,
        interactions_per_user=interactions_per_user,
        consumers=consumers,
        announce=console.print,
    )
    report = markdown_report(results)
    console.print(report)
    stem = result_stem("pipeline", f"{consumers}-consumers" if consumers > 1 else None, *differs)
    paths = write_results(output_dir, stem, results.to_dict(), report)
    paths.append(plot(results, output_dir / f"{stem}.png"))
    if doc is not None:
        replace_section(
            doc,
            ("Pipeline" if consumers == 1 else f"Pipeline, {consumers} consumers")
            + (f" ({', '.join(differs)})" if differs else ""),
            "Measured by `streamrec bench pipeline` (PostgreSQL, the local broker unless Kafka "
            f"is configured); raw numbers in {output_dir.as_posix()}/{stem}.json.\n\n"
            f"{report}\n![{stem}](../{output_dir.as_posix()}/{stem}.png)\n",
        )
        paths.append(doc)
    console.print("written: " + ", ".join(str(path) for path in paths))
