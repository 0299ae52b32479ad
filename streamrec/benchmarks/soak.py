"""``streamrec bench soak``: does a consumer's memory stay bounded over a long stream?

One ``streamrec consume`` process, as deployed, applies ``--events`` synthetic events (10^6 by
default; about ten per user, so a hundred thousand users, over ten thousand items) from the
local broker (or the configured Kafka) into a scratch PostgreSQL schema, while the events
are still being produced. Each time another ``--sample-every`` events (10^5 by default) are
applied, the consumer's resident memory is read from outside the process (psutil when it is
installed, else ``VmRSS`` in /proc/PID/status), beside the users stored so far.

What a consumer keeps in memory is bounded by configuration, and the report states those
bounds beside the measured growth: ``consumer.user_cache_size`` users' interactions and
states, the item vectors of one model version (at most ``MAX_CACHED_VECTORS``), one serving
model, the shortlist schedule's clusters, and at most ``kafka.max_poll_records`` records in
hand. Users far outnumber the user cache in the default run, so the cache fills and then
only replaces users; memory that kept growing with the events after that would be a leak.

The model is an untrained one of the configured size (the cost of an event does not depend
on what the weights learned). Results: bench/results/soak.{json,md,png} (a run of other sizes
adds them to the name), and with ``--doc docs/performance.md`` the document's section "Soak:
a consumer's memory over a long run".

>>> parse_status_rss("Name:\\tpython\\nVmHWM:\\t  204800 kB\\nVmRSS:\\t  102400 kB\\n")
104857600
>>> growth_per_step([(100, 50.0), (200, 60.0), (300, 61.0), (400, 62.0)])
1.0
"""

from __future__ import annotations

import contextlib
import math
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from streamrec.benchmarks.results import output_options
from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.events import InteractionEvent

DEFAULT_EVENTS = 1_000_000
DEFAULT_SAMPLE_EVERY = 100_000
EVENTS_PER_USER = 10
SYNTHETIC_ITEMS = 10_000
SYNTHETIC_GROUPS = 50
ITEMS_PER_GROUP = 200
# The per-user memory of the user cache as docs/operations.md measured it (tracemalloc).
USER_CACHE_BYTES_PER_USER = 2_000
USER_CACHE_BYTES_PER_INTERACTION = 350
POLL_SECONDS = 0.2
MEGABYTE = 1024 * 1024
DOC_SECTION = "Soak: a consumer's memory over a long run"
Announce = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class MemorySample:
    """The consumer process at one moment of the run."""

    events_applied: int
    seconds: float
    resident_bytes: int
    users_stored: int
    # The process's peak resident memory so far, where /proc tells it (Linux).
    peak_resident_bytes: int | None = None

    @property
    def resident_megabytes(self) -> float:
        return self.resident_bytes / MEGABYTE


@dataclass
class SoakResults:
    events: int
    sample_every: int
    samples: list[MemorySample] = field(default_factory=list)
    bounds: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def growth(self) -> dict[str, float | None]:
        """Resident memory: from the first sample to the last, and per ``sample_every``
        events over the second half of the run (after the caches had time to fill)."""
        points = [(s.events_applied, s.resident_megabytes) for s in self.samples]
        if len(points) < 2:
            return {"total_megabytes": None, "second_half_megabytes_per_step": None}
        return {
            "total_megabytes": points[-1][1] - points[0][1],
            "second_half_megabytes_per_step": growth_per_step(points, self.sample_every),
        }

    def to_dict(self) -> dict[str, Any]:
        from streamrec.benchmarks.results import machine_description

        return {
            "benchmark": "soak",
            "events": self.events,
            "sample_every": self.sample_every,
            "seconds": self.seconds,
            "samples": [
                {**asdict(sample), "resident_megabytes": sample.resident_megabytes}
                for sample in self.samples
            ],
            "growth": self.growth(),
            "bounds": self.bounds,
            "settings": self.settings,
            "machine": machine_description(),
        }


def growth_per_step(points: Sequence[tuple[int, float]], step: int | None = None) -> float | None:
    """Megabytes per ``step`` events (default: the spacing of the points) between the middle
    point and the last: the slope once the start-up and the caches' filling are behind."""
    if len(points) < 2:
        return None
    middle, last = points[len(points) // 2], points[-1]
    if last[0] <= middle[0]:
        middle = points[-2]
    spacing = step or (points[-1][0] - points[-2][0]) or 1
    return (last[1] - middle[1]) / (last[0] - middle[0]) * spacing


def parse_status_rss(status: str) -> int:
    """Resident bytes from the text of /proc/PID/status (VmRSS, in kB)."""
    return _status_kilobytes(status, "VmRSS") * 1024


def _status_kilobytes(status: str, name: str) -> int:
    for line in status.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise ValueError(f"no {name} line in the process status")


def resident_memory(pid: int) -> tuple[int, int | None]:
    """(resident bytes, peak resident bytes or None) of process ``pid``: psutil when it is
    installed, else /proc/PID/status."""
    status_path = Path(f"/proc/{pid}/status")
    try:
        import psutil
    except ImportError:
        if not status_path.exists():
            raise UserFacingError(
                "bench soak reads a process's memory with psutil or /proc: install psutil"
            ) from None
        status = status_path.read_text()
        return parse_status_rss(status), _status_kilobytes(status, "VmHWM") * 1024
    resident = int(psutil.Process(pid).memory_info().rss)
    peak = None
    if status_path.exists():
        with contextlib.suppress(ValueError, OSError):
            peak = _status_kilobytes(status_path.read_text(), "VmHWM") * 1024
    return resident, peak


def soak_events(count: int, seed: int = 0) -> Iterator[InteractionEvent]:
    """``count`` synthetic events in time order, about ``EVENTS_PER_USER`` per user, made
    one block of users at a time (never the whole stream in memory)."""
    from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream

    fewest_per_user = EVENTS_PER_USER // 2
    config = SyntheticConfig(
        # Enough users for ``count`` events even if each has the fewest; the stream is cut
        # at ``count``, so the users of its last block go unused.
        users=max(1, math.ceil(count / fewest_per_user)),
        items=SYNTHETIC_ITEMS,
        groups=SYNTHETIC_GROUPS,
        items_per_group=ITEMS_PER_GROUP,
        min_events_per_user=fewest_per_user,
        max_events_per_user=EVENTS_PER_USER * 3 // 2,
        seed=seed,
    )
    return islice(SyntheticStream(config).events(), count)


def cache_bounds(settings: Settings) -> dict[str, Any]:
    """What bounds each part of a consumer's memory that could grow with the stream."""
    from streamrec.model.serving import MAX_CACHED_VECTORS

    users = settings.consumer.user_cache_size
    return {
        "consumer.user_cache_size": users,
        "user_cache_estimate_bytes_per_user": USER_CACHE_BYTES_PER_USER,
        "user_cache_estimate_bytes_per_interaction": USER_CACHE_BYTES_PER_INTERACTION,
        "max_cached_item_vectors": MAX_CACHED_VECTORS,
        "item_vector_bytes": 2 * settings.model.item_dim * 4,
        "serving_model_versions": 1,
        "shortlist_schedule_clusters": settings.model.clusters,
        "kafka.max_poll_records": settings.kafka.max_poll_records,
    }


def user_cache_ceiling_bytes(bounds: dict[str, Any], interactions_per_user: float) -> float:
    """The user cache's memory when full, by the per-user estimate of docs/operations.md."""
    per_user = (
        bounds["user_cache_estimate_bytes_per_user"]
        + interactions_per_user * bounds["user_cache_estimate_bytes_per_interaction"]
    )
    return float(bounds["consumer.user_cache_size"] * per_user)


def run_soak_benchmark(
    settings: Settings,
    *,
    events: int,
    sample_every: int,
    rate: float | None = None,
    announce: Announce = print,
) -> SoakResults:
    """Produce ``events`` synthetic events while one ``streamrec consume`` process applies
    them; sample its resident memory each ``sample_every`` events applied."""
    from streamrec.benchmarks.stack import running_broker

    url = settings.database_url
    if url is None or make_url(url.get_secret_value()).get_backend_name() != "postgresql":
        raise UserFacingError(
            "bench soak measures a consumer on PostgreSQL: set STREAMREC_DATABASE_URL to a "
            "postgresql+psycopg:// URL (a scratch schema is created and dropped)"
        )
    results = SoakResults(
        events=events,
        sample_every=sample_every,
        bounds=cache_bounds(settings),
        settings={
            "offered_rate": rate,
            "events_per_user": EVENTS_PER_USER,
            "items": SYNTHETIC_ITEMS,
            "partitions": settings.kafka.partitions,
            "model": settings.model.model_dump(),
            "serving": settings.serving.model_dump(),
        },
    )
    with (
        running_broker(settings, announce) as broker,
        _scratch_run(broker.settings) as (
            run,
            engine,
        ),
    ):
        _register_untrained_model(run, engine)
        _soak(run, engine, results, rate, announce)
    return results


@contextlib.contextmanager
def _scratch_run(base: Settings) -> Iterator[tuple[Settings, Engine]]:
    """Topics and a PostgreSQL schema of the run's own, dropped on the way out."""
    from streamrec.benchmarks.stack import isolated_topics, new_run_id, scratch_database
    from streamrec.kafka import ensure_topics, streamrec_topic_names
    from streamrec.storage import create_database_engine

    run_id = new_run_id()
    with scratch_database(isolated_topics(base, run_id), run_id) as run:
        ensure_topics(run, streamrec_topic_names(run))
        engine = create_database_engine(run.effective_database_url, timeouts=run.timeouts)
        try:
            yield run, engine
        finally:
            engine.dispose()


def _register_untrained_model(settings: Settings, engine: Engine) -> None:
    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.features import FeatureSchema
    from streamrec.state import ModelStatus, ModelVersion
    from streamrec.storage import UnitOfWork

    config, weights = EfficientRec.new(settings.model, FeatureSchema()).to_version()
    with UnitOfWork(engine) as uow:
        uow.models.add(ModelVersion(None, ModelStatus.ACTIVE, config, weights, reason="soak"))
        uow.commit()


def _soak(
    settings: Settings,
    engine: Engine,
    results: SoakResults,
    rate: float | None,
    announce: Announce,
) -> None:
    from streamrec.benchmarks.consumer_processes import ConsumerProcesses
    from streamrec.benchmarks.replay_thread import ReplayThread
    from streamrec.benchmarks.throughput import stored_records

    group, topic = settings.kafka.consumer_group, settings.topics.interactions
    total, every = results.events, results.sample_every
    due = [*range(every, total, every), total]
    replay = ReplayThread(settings, {}, soak_events(total), rate=rate).start()
    started = time.monotonic()
    try:
        with ConsumerProcesses(settings, 1) as running:
            (consumer,) = running.processes
            deadline = started + 120 + total / 50
            while due:
                problem = running.failed()
                if problem is not None:
                    raise UserFacingError(problem)
                if time.monotonic() > deadline:
                    raise UserFacingError(
                        f"the consumer applied {stored_records(engine, group, topic):,} of "
                        f"{total:,} events before the time limit"
                    )
                applied = stored_records(engine, group, topic)
                if applied < due[0]:
                    time.sleep(POLL_SECONDS)
                    continue
                resident, peak = resident_memory(consumer.pid)
                sample = MemorySample(
                    applied, time.monotonic() - started, resident, _users(engine), peak
                )
                results.samples.append(sample)
                announce(_sample_line(sample))
                due = [step for step in due if step > applied]
    finally:
        replay.cancel()
        replay.join(timeout=60)
    results.seconds = time.monotonic() - started


def _users(engine: Engine) -> int:
    from streamrec.storage.tables import UserRow, table_of

    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table_of(UserRow))).scalar_one()
        )


def _sample_line(sample: MemorySample) -> str:
    return (
        f"  {sample.events_applied:>12,} events  {sample.resident_megabytes:8.1f} MB resident  "
        f"{sample.users_stored:>10,} users  {sample.seconds:7.1f} s"
    )


def markdown_report(results: SoakResults) -> str:
    """The samples, the growth, and the configured bounds beside it."""
    from streamrec.benchmarks.results import markdown_table

    samples = results.samples
    first = samples[0].resident_megabytes if samples else 0.0
    rows = []
    previous: MemorySample | None = None
    for sample in samples:
        rate = "-"
        if previous is not None and sample.seconds > previous.seconds:
            per_second = (sample.events_applied - previous.events_applied) / (
                sample.seconds - previous.seconds
            )
            rate = f"{per_second:,.0f}"
        rows.append(
            [
                f"{sample.events_applied:,}",
                f"{sample.seconds:,.0f}",
                f"{sample.resident_megabytes:,.1f}",
                f"{sample.resident_megabytes - first:+,.1f}",
                f"{sample.users_stored:,}",
                rate,
            ]
        )
        previous = sample
    text = (
        f"One `streamrec consume` process applied {results.events:,} synthetic events (about "
        f"{EVENTS_PER_USER} per user, {SYNTHETIC_ITEMS:,} items) in {results.seconds:,.0f} s; "
        f"its resident memory read every {results.sample_every:,} events applied.\n\n"
    )
    text += markdown_table(
        ["events applied", "s", "resident MB", "since first MB", "users stored", "events/s"],
        rows,
    )
    growth = results.growth()
    bounds = results.bounds
    users = samples[-1].users_stored if samples else 0
    ceiling = user_cache_ceiling_bytes(bounds, results.events / max(users, 1)) / MEGABYTE
    total, slope = growth["total_megabytes"], growth["second_half_megabytes_per_step"]
    text += "\n" + markdown_table(
        ["what", "value"],
        [
            [
                "resident memory, first sample to last",
                "-" if total is None else f"{total:+,.1f} MB",
            ],
            [
                f"per {results.sample_every:,} events over the second half",
                "-" if slope is None else f"{slope:+,.2f} MB",
            ],
            [
                "users kept in memory at most (`consumer.user_cache_size`)",
                f"{bounds['consumer.user_cache_size']:,} (the run stored {users:,})",
            ],
            [
                "user cache when full (estimate: 2 KB per user, 350 B per interaction)",
                f"{ceiling:,.0f} MB",
            ],
            [
                "item vectors cached at most (one model version)",
                f"{bounds['max_cached_item_vectors']:,} "
                f"(about {bounds['item_vector_bytes']} bytes each, with its target)",
            ],
            [
                "records in hand at most (`kafka.max_poll_records`)",
                f"{bounds['kafka.max_poll_records']:,}",
            ],
        ],
    )
    return text


def plot(results: SoakResults, path: Path) -> Path:
    """Resident memory and users stored against events applied."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    events = [sample.events_applied for sample in results.samples]
    figure, (memory, users) = pyplot.subplots(1, 2, figsize=(13, 4.5))
    memory.plot(
        events, [s.resident_megabytes for s in results.samples], marker="o", label="resident"
    )
    peaks = [s.peak_resident_bytes for s in results.samples]
    if all(peak is not None for peak in peaks):
        memory.plot(
            events, [(peak or 0) / MEGABYTE for peak in peaks], linestyle="--", label="peak"
        )
        memory.legend()
    memory.set(
        xlabel="events applied",
        ylabel="consumer resident memory (MB)",
        title="a consumer's memory over the run",
        ylim=(0, None),
    )
    users.plot(events, [s.users_stored for s in results.samples], marker="o", label="stored")
    users.axhline(
        results.bounds["consumer.user_cache_size"],
        color="tab:red",
        linestyle="--",
        linewidth=0.8,
        label="kept in memory at most",
    )
    users.set(xlabel="events applied", ylabel="users", title="users stored", ylim=(0, None))
    users.legend()
    for axis in (memory, users):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def describe_command() -> str:
    """The fixed part of the document's section: what the command measures."""
    text = (
        "Measured by `streamrec bench soak` (PostgreSQL, the local broker unless Kafka is "
        "configured): one `streamrec consume` process applies 10^6 synthetic events (about "
        f"{EVENTS_PER_USER} per user, so 10^5 users, over {SYNTHETIC_ITEMS:,} items) while "
        "they are produced, and its resident memory is read from outside every 10^5 events "
        "(psutil, else /proc/PID/status), beside the users stored. What the consumer keeps "
        "is bounded by configuration: `consumer.user_cache_size` users (10,000 by default, "
        "far fewer than the run's users, so the cache fills and then only replaces), the "
        "item vectors of one model version, one serving model, `kafka.max_poll_records` "
        "records in hand. Memory that kept growing after the caches filled would be a leak. "
        "Sizes are flags (`--events`, `--sample-every`, `--rate`); raw numbers in "
        "bench/results/soak.json."
    )
    return textwrap.fill(text, width=95, break_on_hyphens=False) + "\n"


@click.command(name="soak")
@click.option("--events", type=click.IntRange(min=1), default=DEFAULT_EVENTS, show_default=True)
@click.option(
    "--sample-every",
    type=click.IntRange(min=1),
    default=DEFAULT_SAMPLE_EVERY,
    show_default=True,
    help="Read the consumer's memory each time this many more events were applied.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1.0),
    default=None,
    help="Events per second offered (default: as fast as the producer goes).",
)
@output_options(section=f"the '{DOC_SECTION}' section")
@click.pass_obj
def command(
    settings: Settings,
    events: int,
    sample_every: int,
    rate: float | None,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """A consumer's resident memory over a long stream, beside its caches' bounds."""
    from rich.console import Console

    from streamrec.benchmarks.results import replace_section, write_results

    console = Console()
    results = run_soak_benchmark(
        settings, events=events, sample_every=sample_every, rate=rate, announce=console.print
    )
    report = markdown_report(results)
    console.print(report)
    stem = result_stem_of(events, sample_every, rate)
    paths = write_results(output_dir, stem, results.to_dict(), report)
    paths.append(plot(results, output_dir / f"{stem}.png"))
    if doc is not None:
        image = f"![{stem}](../{output_dir.as_posix()}/{stem}.png)"
        replace_section(doc, DOC_SECTION, f"{describe_command()}\n{report}\n{image}\n")
        paths.append(doc)
    console.print("written: " + ", ".join(str(path) for path in paths))


def result_stem_of(events: int, sample_every: int, rate: float | None) -> str:
    """``soak``, followed by each size that differs from the default, so that a small trial
    run never overwrites the results of the full one.

    >>> result_stem_of(DEFAULT_EVENTS, DEFAULT_SAMPLE_EVERY, None)
    'soak'
    >>> result_stem_of(20_000, 5_000, 1000.0)
    'soak-events20000-sample-every5000-rate1000'
    """
    parts = ["soak"]
    if events != DEFAULT_EVENTS:
        parts.append(f"events{events}")
    if sample_every != DEFAULT_SAMPLE_EVERY:
        parts.append(f"sample-every{sample_every}")
    if rate is not None:
        parts.append(f"rate{rate:g}")
    return "-".join(parts)


if __name__ == "__main__":
    from streamrec.config import load_settings

    command(obj=load_settings())
