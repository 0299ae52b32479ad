"""``streamrec bench prequential``: the prequential hit rate of the real pipeline beside
streaming baselines, on the same replay of a dataset in time order.

1. The first ``--train-share`` of the stream trains the first model version (the only data a
   model may see before it is scored), which is registered as active in a scratch database.
2. The whole stream is produced into the interactions topic; a real consumer (the same loop
   as ``streamrec consume``, in a thread) applies it and publishes recommendations.
3. A tap reads both topics back and judges each event against the user's latest published
   top-N before it (streamrec.evaluation.prequential). A user's events before their first
   message (every event of theirs in their first batch) are judged against the fallback a
   new user was served before that batch: the global list of ``streamrec recommend``, read
   from the database by a hook in the consumer loop (streamrec.benchmarks.served_fallback).
   The baselines, too, answer users they have never seen. A second row scores the same
   outcomes with those events counted as misses ("own lists only"), the pipeline's
   published messages alone.
4. The baselines replay the same events in the same order, test-then-train.

Only events after the training prefix are scored, for every method; all methods learn from
the prefix. Results go to
bench/results/prequential-<dataset>[-<limit>]-batch<size>[-<what else differs>].{json,md,png}
(``streamrec.benchmarks.results``), and to a section of ``--doc`` when given.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.results import output_options
from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.evaluation.prequential import DEFAULT_EVENT_COUNTS, HitRateBoard, Outcome, Served

STREAMREC = "streamrec (pipeline)"
STREAMREC_OWN_LISTS = "streamrec (pipeline), own lists only"
# Event counts drawn in the "by the user's event count" plot.
PLOTTED_EVENT_COUNTS = tuple(range(0, 31))
# Longest wait for the pipeline to answer one more event: a slow run (batches of 1) goes on
# as long as it progresses, a stuck one ends and says how many events it never answered.
DRAIN_STALL_SECONDS = 120.0


@dataclass
class PrequentialRun:
    """Everything one run measured."""

    dataset: str
    events: int
    scored_from: int
    recommendations: int
    boards: dict[str, HitRateBoard]
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # Scored pipeline events by what they were judged against (Served values).
    served: dict[str, int] = field(default_factory=dict)
    # Events the pipeline never answered (it stalled): decided at the end, as misses.
    unanswered: int = 0

    def to_dict(self) -> dict[str, Any]:
        from streamrec.benchmarks.results import machine_description

        return {
            "benchmark": "prequential",
            "dataset": self.dataset,
            "events": self.events,
            "scored_from_position": self.scored_from,
            "top_n": self.recommendations,
            "methods": [board.to_dict(PLOTTED_EVENT_COUNTS) for board in self.boards.values()],
            "seconds": self.seconds,
            "settings": self.settings,
            "pipeline_events_served_by": self.served,
            "pipeline_events_unanswered": self.unanswered,
            "machine": machine_description(),
        }


def stream_of(dataset: Dataset, limit: int | None) -> list[tuple[str, str, float]]:
    """(user, item, weight) of the first ``limit`` events, in the replay's order."""
    table = dataset.table
    rows = len(table) if limit is None else min(limit, len(table))
    return [
        (
            table.user_vocabulary[table.users[row]],
            table.item_vocabulary[table.items[row]],
            float(table.weights[row]),
        )
        for row in range(rows)
    ]


def run_prequential(
    settings: Settings,
    dataset: Dataset,
    *,
    limit: int | None,
    train_share: float,
    training_steps: int,
    window: int,
    baselines: bool = True,
    candidates: int = 100,
    announce: Callable[[str], None] = print,
    on_progress: Callable[[int, int, HitRateBoard], None] | None = None,
) -> PrequentialRun:
    """Run the pipeline and the baselines on ``dataset`` and score them (see module text)."""
    from streamrec.benchmarks.consumer_thread import ConsumerThread
    from streamrec.benchmarks.initial_model import settings_for_dataset, train_and_activate
    from streamrec.benchmarks.served_fallback import FallbackRecorder
    from streamrec.benchmarks.stack import (
        isolated_topics,
        new_run_id,
        running_broker,
        scratch_database,
    )
    from streamrec.benchmarks.topic_tap import PrequentialTap
    from streamrec.cli.replay import produce_dataset
    from streamrec.kafka import create_producer, ensure_topics, streamrec_topic_names
    from streamrec.storage import create_database_engine

    settings = settings_for_dataset(settings, dataset)
    events = list(islice(dataset.events(), limit))
    if not events:
        raise click.ClickException(f"dataset {dataset.name} has no events")
    scored_from = int(len(events) * train_share)
    positions = {event.event_id: position for position, event in enumerate(events)}
    count = settings.model.recommendations
    seconds: dict[str, float] = {}
    score = PipelineScore(scored_from, window)
    run_id = new_run_id()
    with (
        running_broker(settings, announce) as broker,
        scratch_database(isolated_topics(broker.settings, run_id), run_id) as run_settings,
    ):
        engine = create_database_engine(run_settings.effective_database_url)
        try:
            started = time.perf_counter()
            prefix = dataset.table.subset(slice(0, scored_from)) if scored_from else dataset.table
            version = train_and_activate(
                engine, run_settings, dataset, steps=training_steps, table=prefix
            )
            seconds["training"] = time.perf_counter() - started
            announce(
                f"model version {version}: {training_steps} steps on the first "
                f"{scored_from or len(events):,} events"
            )
            ensure_topics(run_settings, streamrec_topic_names(run_settings))
            # Made before the consumer starts: it reads the fallback before the first batch.
            fallbacks = FallbackRecorder(run_settings, engine)
            with ConsumerThread(run_settings, engine, hooks=fallbacks.hooks()) as consumer:
                started = time.perf_counter()
                producer = create_producer(run_settings)
                try:
                    produce_dataset(producer, run_settings, dataset.items, events)
                finally:
                    producer.close()
                seconds["produce"] = time.perf_counter() - started
                tap = PrequentialTap(run_settings, positions, fallbacks=fallbacks)
                try:
                    unanswered = _drain(tap, score, len(events), on_progress, consumer)
                    if unanswered:
                        announce(
                            f"the pipeline stopped answering: {unanswered:,} events unanswered"
                        )
                finally:
                    tap.close()
                seconds["pipeline"] = time.perf_counter() - started
        finally:
            engine.dispose()
    boards = {STREAMREC: score.board, STREAMREC_OWN_LISTS: score.own_lists}
    if baselines:
        started = time.perf_counter()
        boards.update(_run_baselines(dataset, events, scored_from, count, window, candidates))
        seconds["baselines"] = time.perf_counter() - started
    return PrequentialRun(
        dataset=dataset.name,
        events=len(events),
        scored_from=scored_from,
        recommendations=count,
        boards=boards,
        seconds=seconds,
        settings={
            "train_share": train_share,
            "training_steps": training_steps,
            "window": window,
            "candidates_for_river": candidates,
            "model": settings.model.model_dump(),
            "max_poll_records": settings.kafka.max_poll_records,
        },
        served={served.value: score.served[served] for served in Served},
        unanswered=unanswered,
    )


class PipelineScore:
    """The pipeline's outcomes after the training prefix, scored twice: ``board`` counts the
    fallback served to a user with no message yet, ``own_lists`` counts it as a miss (the
    published messages alone); ``served`` counts what the scored events were judged against.

    >>> score = PipelineScore(scored_from=1, window=10)
    >>> score.add([Outcome(0, "u", "a", True, 0, Served.FALLBACK),
    ...            Outcome(1, "u", "b", True, 0, Served.FALLBACK),
    ...            Outcome(2, "u", "c", True, 1, Served.PUBLISHED)])
    >>> score.board.hit_rate, score.own_lists.hit_rate, score.served[Served.FALLBACK]
    (1.0, 0.5, 1)
    """

    def __init__(self, scored_from: int, window: int) -> None:
        self.scored_from = scored_from
        self.board = HitRateBoard(STREAMREC, window)
        self.own_lists = HitRateBoard(STREAMREC_OWN_LISTS, window)
        self.served: Counter[Served] = Counter()

    def add(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.position < self.scored_from:
                continue
            self.served[outcome.served] += 1
            self.board.record(outcome.position, outcome.hit, outcome.events_before)
            own_hit = outcome.hit and outcome.served is Served.PUBLISHED
            self.own_lists.record(outcome.position, own_hit, outcome.events_before)


def _drain(
    tap: Any,
    score: PipelineScore,
    total: int,
    on_progress: Callable[[int, int, HitRateBoard], None] | None,
    consumer: Any,
    stall_seconds: float = DRAIN_STALL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Read the tap until every event is judged (or the pipeline stops answering), scoring
    as we go; return how many events were never answered (decided at the end, unheld)."""
    last_decided, last_progress = -1, clock()
    while tap.join.decided < total and clock() - last_progress < stall_seconds:
        if not consumer.alive():
            consumer.stop()  # raises the loop's error, if it died of one
            break
        score.add(tap.read())
        if tap.join.decided != last_decided:
            last_decided, last_progress = tap.join.decided, clock()
        if on_progress is not None:
            on_progress(tap.join.decided, total, score.board)
    unanswered = total - tap.join.decided
    score.add(tap.finish())
    return unanswered


def _run_baselines(
    dataset: Dataset,
    events: Sequence[Any],
    scored_from: int,
    count: int,
    window: int,
    candidates: int,
) -> dict[str, HitRateBoard]:
    from streamrec.evaluation.streaming_baselines import (
        StreamingPopularity,
        replay_baselines,
        river_baselines,
    )

    recommenders = [
        StreamingPopularity(),
        StreamingPopularity(half_life_events=max(1.0, len(events) / 20)),
        *river_baselines(candidates=candidates),
    ]
    return replay_baselines(
        stream_of(dataset, len(events)),
        recommenders,
        count=count,
        window=window,
        score_from=scored_from,
    )


def markdown_report(run: PrequentialRun) -> str:
    from streamrec.benchmarks.results import markdown_table, shown

    header = ["method", f"HR@{run.recommendations}"]
    header += [_count_label(count) for count in DEFAULT_EVENT_COUNTS]
    header += ["events scored"]
    rows = []
    for board in run.boards.values():
        by_count = board.by_event_count()
        rows.append(
            [board.name, shown(board.hit_rate)]
            + [shown(by_count[count][0]) for count in DEFAULT_EVENT_COUNTS]
            + [f"{board.events:,}"]
        )
    intro = (
        f"# Prequential hit rate on {run.dataset}\n\n"
        f"{run.events:,} events replayed in time order; the first {run.scored_from:,} trained "
        f"the first model and are not scored; the consumer took up to "
        f"{run.settings['max_poll_records']:,} records per batch. HR@{run.recommendations}: "
        "share of events whose "
        "item was in the user's latest top-N published before the event was applied "
        "(streamrec: read from the recommendations topic; baselines: asked before learning "
        "the event). Columns 'after k' score only events that had k earlier events of the "
        "same user.\n\n" + _served_note(run)
    )
    return intro + markdown_table(header, rows)


def _served_note(run: PrequentialRun) -> str:
    """How many scored pipeline events had a message of their own user to be judged by."""
    scored = sum(run.served.values())
    if not scored:
        return ""
    fallback = run.served.get(Served.FALLBACK.value, 0)
    nothing = run.served.get(Served.NOTHING.value, 0)
    return (
        f"A user's events before their first published message (all of theirs in their "
        f"first batch) are judged against the fallback a new user was served before that "
        f"batch, the global list of `streamrec recommend`: {fallback:,} of the {scored:,} "
        f"scored pipeline events ({fallback / scored:.1%}), {nothing:,} with nothing at all. "
        f"'{STREAMREC_OWN_LISTS}' counts them as misses.\n\n"
        + (
            f"**The pipeline stopped answering: {run.unanswered:,} events were never answered "
            "and count as misses.**\n\n"
            if run.unanswered
            else ""
        )
    )


def _count_label(count: int) -> str:
    return "first event" if count == 0 else f"after {count}"


def plot(run: PrequentialRun, path: Path, title: str | None = None) -> Path:
    """Hit rate over the stream (per window) and by the user's event count, per method."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (over_stream, by_count) = pyplot.subplots(1, 2, figsize=(13, 5.5), layout="constrained")
    for board in run.boards.values():
        windows = board.windows()
        over_stream.plot(
            [end for end, _ in windows], [rate for _, rate in windows], label=board.name
        )
        counts = board.by_event_count(PLOTTED_EVENT_COUNTS)
        shown_counts = [count for count in PLOTTED_EVENT_COUNTS if counts[count][0] is not None]
        by_count.plot(shown_counts, [counts[count][0] for count in shown_counts], label=board.name)
    over_stream.set(
        xlabel="position in the stream (events)",
        ylabel=f"HR@{run.recommendations} per window",
        title="over the stream",
    )
    by_count.set(
        xlabel="the user's earlier events",
        ylabel=f"HR@{run.recommendations}",
        title="by the user's event count",
    )
    for axis in (over_stream, by_count):
        axis.grid(alpha=0.3)
    # One legend for both panels, below them: inside a panel it hid the lines.
    figure.legend(
        *over_stream.get_legend_handles_labels(),
        loc="outside lower center",
        ncol=3,
        fontsize="small",
    )
    figure.suptitle(title or f"Prequential hit rate, {run.dataset}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


@click.command(name="prequential")
@click.option("--dataset", "dataset_name", default="ml-latest-small", show_default=True)
@click.option("--limit", type=click.IntRange(min=10), default=None, help="Replay N events only.")
@click.option(
    "--train-share",
    type=click.FloatRange(0.0, 0.9),
    default=0.2,
    show_default=True,
    help="Share of the stream (its beginning) that trains the first model; not scored.",
)
@click.option("--training-steps", type=click.IntRange(min=1), default=150, show_default=True)
@click.option("--window", type=click.IntRange(min=1), default=None, help="Events per plot point.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Records per consumer batch (default: kafka.max_poll_records). Recommendations are "
    "refreshed once per batch, so smaller batches answer a user's next event sooner. With "
    "--in-process: every method's lists are refreshed every B events (default: after every "
    "event).",
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Drive the streaming model in this process (over an in-memory state, no broker or "
    "database) and judge every method in one regime: after every event, or per batch of "
    "--batch-size events.",
)
@click.option(
    "--ease-every",
    type=click.IntRange(min=1),
    default=None,
    help="With --in-process: refit the EASE baseline on all events so far every N events "
    "[default: 10000].",
)
@click.option("--no-baselines", is_flag=True, help="Measure streamrec only.")
@click.option(
    "--candidates",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Popular unseen items that river's models rank.",
)
@output_options(section="the section for this dataset and batch size")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    limit: int | None,
    train_share: float,
    training_steps: int,
    window: int | None,
    batch_size: int | None,
    in_process: bool,
    ease_every: int | None,
    no_baselines: bool,
    candidates: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Prequential hit rate of the real pipeline (or, --in-process, of the streaming model
    in this process) beside streaming baselines."""
    if in_process:
        from streamrec.benchmarks.prequential_in_process import run_command

        run_command(
            settings,
            dataset_name=dataset_name,
            limit=limit,
            train_share=train_share,
            training_steps=training_steps,
            window=window,
            batch_size=batch_size,
            no_baselines=no_baselines,
            candidates=candidates,
            ease_every=ease_every,
            output_dir=output_dir,
            doc=doc,
        )
        return
    if ease_every is not None:
        raise click.UsageError("--ease-every applies to --in-process runs only")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from streamrec.benchmarks.results import (
        replace_section,
        result_stem,
        run_differences,
        write_results,
    )
    from streamrec.config import changed_model_settings
    from streamrec.datasets.registry import load_dataset

    console = Console()
    # Named before the dataset adapts the settings: the dataset's name says that part.
    differs = run_differences(
        changed_model_settings(settings),
        leave_out={"dataset_name", "limit", "batch_size", "window"},
    )
    if batch_size is not None:
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"max_poll_records": batch_size})}
        )
    dataset = load_dataset(dataset_name, settings)
    total = len(dataset.table) if limit is None else min(limit, len(dataset.table))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("pipeline", total=total)

        def show(decided: int, _: int, board: HitRateBoard) -> None:
            progress.update(
                task,
                completed=decided,
                description=f"pipeline HR@{settings.model.recommendations} {board.hit_rate:.3f}",
            )

        run = run_prequential(
            settings,
            dataset,
            limit=limit,
            train_share=train_share,
            training_steps=training_steps,
            window=window or max(1, total // 50),
            baselines=not no_baselines,
            candidates=candidates,
            announce=console.print,
            on_progress=show,
        )
    report = markdown_report(run)
    console.print(report)
    stem = result_stem(
        "prequential",
        dataset.name,
        str(limit) if limit else None,
        f"batch{settings.kafka.max_poll_records}",
        *differs,
    )
    paths = write_results(output_dir, stem, run.to_dict(), report)
    paths.append(plot(run, output_dir / f"{stem}.png"))
    if doc is not None:
        title, _, body = report.partition("\n")
        replace_section(
            doc,
            f"{title.removeprefix('# ')}, batches of {settings.kafka.max_poll_records}"
            + (f", first {limit:,} events" if limit else "")
            + (f" ({', '.join(differs)})" if differs else ""),
            f"Measured by `streamrec bench prequential`; raw numbers in {stem}.json.\n{body}\n"
            f"![{stem}](../{output_dir.as_posix()}/{stem}.png)\n",
        )
        paths.append(doc)
    console.print("written: " + ", ".join(str(path) for path in paths))
