"""``streamrec bench prequential``: the prequential hit rate of the real pipeline beside
streaming baselines, every method judged in one regime: per consumer batch.

1. The first ``--train-share`` of the stream trains the first model version (the only data a
   model may see before it is scored), which is registered as active in a scratch database.
2. The whole stream is produced into the interactions topic; a real consumer (the same loop
   as ``streamrec consume``, in a thread) applies it and publishes recommendations. A hook in
   the consumer loop records every batch it applied (``consumer_batches.ConsumerBatchLog``).
3. Unless ``--frozen``, the scheduled trainer runs during the replay on the stream's clock: a
   fine-tune every ``--fine-tune-every`` events or ``--fine-tune-every-hours`` of event time,
   promoted (or rejected) and switched in as in production
   (``stream_clock_trainer.StreamClockTrainer``; the consumer waits for the run at the batch
   boundary where it is due, so the switch happens at the same place in every run).
4. A tap reads both topics back and judges each event against the user's latest published
   top-N before it (streamrec.evaluation.prequential). A user's events before their first
   message (every event of theirs in their first batch) are judged against the fallback a
   new user was served before that batch: the global list of ``streamrec recommend``, read
   from the database by a hook in the consumer loop (streamrec.benchmarks.served_fallback).
   A second row scores the same outcomes with those events counted as misses ("own lists
   only"), the pipeline's published messages alone.
5. The baselines replay the same events in the consumer's batches
   (``streamrec.evaluation.prequential_regimes.replay_in_batches`` with the recorded batch
   ends): every event of a batch is judged against the lists from before the batch, then
   the batch is learned. Baselines: popularity, decayed popularity, river's BiasedMF and
   FunkMF, item co-occurrence and EASE refitted every ``--ease-every`` events, as in
   ``--in-process`` (``streamrec.benchmarks.prequential_in_process``, the regime after every
   event or per batch of B events in this process).

Only events after the training prefix are scored, for every method; all methods learn from
the prefix. Results go to
bench/results/prequential-<dataset>[-<limit>]-batch<size>[-<what else differs>].{json,md,png}
(``streamrec.benchmarks.results``), and to a section of ``--doc`` when given.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from streamrec.benchmarks.consumer_batches import AppliedBatch
from streamrec.benchmarks.results import output_options
from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.evaluation.prequential import DEFAULT_EVENT_COUNTS, HitRateBoard, Outcome, Served
from streamrec.evaluation.prequential_regimes import (
    BatchRecommender,
    RankedHitBoard,
    ReplayScore,
    replay_in_batches,
)

if TYPE_CHECKING:
    from streamrec.benchmarks.stream_clock_trainer import StreamSchedule

STREAMREC = "streamrec (pipeline)"
STREAMREC_OWN_LISTS = "streamrec (pipeline), own lists only"
# Event counts drawn in the "by the user's event count" plot.
PLOTTED_EVENT_COUNTS = tuple(range(0, 31))
# The trainer fine-tunes every this many applied events unless told otherwise.
DEFAULT_FINE_TUNE_EVERY = 10_000
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


@dataclass
class PipelineRun(PrequentialRun):
    """A ``PrequentialRun`` of the pipeline: the consumer's batches (at most ``batch_size``
    records each), each baseline's replay in them, the consumer's own time and the trainer
    runs during the replay (None: the model was frozen)."""

    batch_size: int = 1
    batches: int = 0
    replays: dict[str, ReplayScore] = field(default_factory=dict)
    consumer_ms_per_event: float | None = None
    trainer: dict[str, Any] | None = None

    @property
    def regime(self) -> str:
        return f"per consumer batch of up to {self.batch_size:,}"

    @property
    def model_mode(self) -> str:
        if self.trainer is None:
            return "model frozen"
        return f"fine-tuned {self.trainer['schedule']}"

    def cost_per_event_ms(self) -> dict[str, float | None]:
        """Each method's answering and learning per scored event, in milliseconds (the
        pipeline: the consumer's batches, poll to commit, per event they held)."""
        costs = {STREAMREC: self.consumer_ms_per_event}
        costs.update(
            (name, replay.seconds.per_event_ms(replay.board.events))
            for name, replay in self.replays.items()
        )
        return costs

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "mode": "pipeline",
            "regime": self.regime,
            "batch_size": self.batch_size,
            "consumer_batches": self.batches,
            "cost_per_event_ms": self.cost_per_event_ms(),
            "trainer": self.trainer,
        }


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
    ease_every: int | None = None,
    schedule: StreamSchedule | None = None,
    announce: Callable[[str], None] = print,
    on_progress: Callable[[int, int, HitRateBoard], None] | None = None,
) -> PipelineRun:
    """Run the pipeline and the baselines on ``dataset`` and score them (see module text);
    ``schedule`` None keeps the model frozen."""
    from streamrec.benchmarks.consumer_batches import ConsumerBatchLog, chained_hooks
    from streamrec.benchmarks.consumer_thread import ConsumerThread
    from streamrec.benchmarks.initial_model import settings_for_dataset, train_and_activate
    from streamrec.benchmarks.prequential_in_process import DEFAULT_EASE_EVERY
    from streamrec.benchmarks.served_fallback import FallbackRecorder
    from streamrec.benchmarks.stack import (
        isolated_topics,
        new_run_id,
        running_broker,
        scratch_database,
    )
    from streamrec.benchmarks.stream_clock_trainer import StreamClockTrainer
    from streamrec.benchmarks.topic_tap import PrequentialTap
    from streamrec.cli.replay import produce_dataset
    from streamrec.kafka import create_producer, ensure_topics, streamrec_topic_names
    from streamrec.storage import create_database_engine

    ease_every = ease_every or DEFAULT_EASE_EVERY
    settings = settings_for_dataset(settings, dataset)
    events = list(islice(dataset.events(), limit))
    if not events:
        raise click.ClickException(f"dataset {dataset.name} has no events")
    scored_from = int(len(events) * train_share)
    positions = {event.event_id: position for position, event in enumerate(events)}
    count = settings.serving.recommendations
    seconds: dict[str, float] = {}
    score = PipelineScore(scored_from, window)
    run_id = new_run_id()
    trainer: StreamClockTrainer | None = None
    with (
        running_broker(settings, announce) as broker,
        scratch_database(isolated_topics(broker.settings, run_id), run_id) as run_settings,
    ):
        engine = create_database_engine(
            run_settings.effective_database_url, timeouts=run_settings.timeouts
        )
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
            log = ConsumerBatchLog(run_settings.topics.interactions, positions)
            # Made before the consumer starts: it reads the fallback before the first batch.
            fallbacks = FallbackRecorder(run_settings, engine)
            # The trainer switches versions after the log counted the batch and before the
            # fallback for the next batch is read (from the version then active).
            on_batch = [log.on_batch]
            if schedule is not None:
                trainer = StreamClockTrainer(run_settings, engine, log, schedule, announce=announce)
                on_batch.append(trainer.on_batch)
            on_batch.append(fallbacks.on_batch)
            try:
                with ConsumerThread(
                    run_settings, engine, hooks=chained_hooks(*on_batch)
                ) as consumer:
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
                if trainer is not None:
                    trainer.stop()
        finally:
            engine.dispose()
    applied = log.batches()
    boards: dict[str, HitRateBoard] = {STREAMREC: score.board, STREAMREC_OWN_LISTS: score.own_lists}
    replays: dict[str, ReplayScore] = {}
    if baselines:
        started = time.perf_counter()
        from streamrec.benchmarks.prequential_in_process import baseline_methods

        replays = replay_in_consumer_batches(
            dataset,
            settings,
            limit,
            positions,
            applied,
            baseline_methods(len(events), candidates, ease_every),
            score_from=scored_from,
            count=count,
            window=window,
        )
        boards.update((name, replay.board) for name, replay in replays.items())
        seconds["baselines"] = time.perf_counter() - started
    return PipelineRun(
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
            "ease_every": ease_every,
            "model": settings.model.model_dump(),
            "serving": settings.serving.model_dump(),
            "training": settings.training.model_dump(),
            "trainer": settings.trainer.model_dump(),
            "max_poll_records": settings.kafka.max_poll_records,
        },
        served={served.value: score.served[served] for served in Served},
        unanswered=unanswered,
        batch_size=settings.kafka.max_poll_records,
        batches=len(applied),
        replays=replays,
        consumer_ms_per_event=_consumer_ms_per_event(applied, scored_from),
        trainer=None if trainer is None else trainer.to_dict(),
    )


def applied_order(batches: Sequence[AppliedBatch], events: int) -> tuple[list[int], list[int]]:
    """The stream positions in the order the consumer applied them, and where each batch
    ends in that order. Positions no batch held (the pipeline stopped) follow as one last
    batch, in stream order.

    >>> applied_order([AppliedBatch((0, 2), None), AppliedBatch((1,), None)], 4)
    ([0, 2, 1, 3], [2, 3, 4])
    """
    order: list[int] = []
    ends: list[int] = []
    seen: set[int] = set()
    for batch in batches:
        fresh = [position for position in batch.positions if position not in seen]
        if not fresh:
            continue
        order += fresh
        seen.update(fresh)
        ends.append(len(order))
    missing = [position for position in range(events) if position not in seen]
    if missing:
        order += missing
        ends.append(len(order))
    return order, ends


def replay_in_consumer_batches(
    dataset: Dataset,
    settings: Settings,
    limit: int | None,
    positions: Mapping[str, int],
    batches: Sequence[AppliedBatch],
    methods: Sequence[BatchRecommender],
    *,
    score_from: int,
    count: int,
    window: int,
) -> dict[str, ReplayScore]:
    """Each of ``methods`` replayed in the consumer's ``batches`` (module text), on the
    events as the consumer accepts them (``prequential_in_process.accepted_stream``);
    ``positions`` maps the replay's event ids to their place in the stream."""
    from streamrec.benchmarks.prequential_in_process import accepted_stream

    accepted = {
        positions[event.event.event_id]: event
        for event in accepted_stream(dataset, settings, limit)
        if event.event.event_id in positions
    }
    order, ends = applied_order(batches, len(positions))
    kept = [position for position in order if position in accepted]
    # Dropping refused events moves the batch ends back by the refused events before them.
    dropped_before = 0
    kept_ends, index = [], 0
    for end in ends:
        while index < end:
            dropped_before += order[index] not in accepted
            index += 1
        kept_ends.append(end - dropped_before)
    kept_ends = list(dict.fromkeys(kept_ends))
    in_order = [accepted[position] for position in kept]
    return {
        method.name: replay_in_batches(
            in_order,
            method,
            count=count,
            window=window,
            score_from=score_from,
            batch_ends=kept_ends,
            positions=kept,
        )
        for method in methods
    }


def _consumer_ms_per_event(batches: Sequence[AppliedBatch], scored_from: int) -> float | None:
    """The consumer's time (poll to commit) per event over the batches with a scored event."""
    timed = [
        batch
        for batch in batches
        if batch.seconds is not None and max(batch.positions) >= scored_from
    ]
    events = sum(len(batch.positions) for batch in timed)
    if not events:
        return None
    return sum(batch.seconds or 0.0 for batch in timed) / events * 1e3


class PipelineScore:
    """The pipeline's outcomes after the training prefix, scored twice: ``board`` counts the
    fallback served to a user with no message yet, ``own_lists`` counts it as a miss (the
    published messages alone); ``served`` counts what the scored events were judged against.
    Both boards keep NDCG too, from the item's rank in the list.

    >>> score = PipelineScore(scored_from=1, window=10)
    >>> score.add([Outcome(0, "u", "a", True, 0, Served.FALLBACK, rank=0),
    ...            Outcome(1, "u", "b", True, 0, Served.FALLBACK, rank=0),
    ...            Outcome(2, "u", "c", True, 1, Served.PUBLISHED, rank=1)])
    >>> score.board.hit_rate, score.own_lists.hit_rate, score.served[Served.FALLBACK]
    (1.0, 0.5, 1)
    """

    def __init__(self, scored_from: int, window: int) -> None:
        self.scored_from = scored_from
        self.board = RankedHitBoard(STREAMREC, window)
        self.own_lists = RankedHitBoard(STREAMREC_OWN_LISTS, window)
        self.served: Counter[Served] = Counter()

    def add(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.position < self.scored_from:
                continue
            self.served[outcome.served] += 1
            self.board.record_rank(outcome.position, outcome.rank, outcome.events_before)
            own_rank = outcome.rank if outcome.served is Served.PUBLISHED else None
            self.own_lists.record_rank(outcome.position, own_rank, outcome.events_before)


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


def markdown_report(run: PipelineRun) -> str:
    n = run.recommendations
    intro = (
        f"# Prequential hit rate of the pipeline on {run.dataset}, {run.regime}, "
        f"{run.model_mode}\n\n"
        f"{run.events:,} events replayed in time order through the broker, one consumer and "
        f"the database; the first {run.scored_from:,} trained the first model and are "
        "learned by every method, not scored. The consumer applied the stream in "
        f"{run.batches:,} batches of at most {run.batch_size:,} records; every baseline is "
        "replayed in the same batches: each event of a batch is judged against the lists "
        "from before the batch, then the batch is learned. streamrec is judged against the "
        f"list it published before the event's batch (the recommendations topic). HR@{n} "
        f"and NDCG@{n}: the event's item in the user's top {n} (NDCG: 1/log2(rank + 2)). "
        "Columns 'after k' give HR of events that had k earlier events of the same user; "
        "'ms per event': answering and learning per scored event on this machine (the "
        "pipeline: the consumer's batches, poll to commit).\n\n"
        + _trainer_note(run)
        + _served_note(run)
    )
    return intro + method_table(run.boards, run.cost_per_event_ms(), n)


def method_table(
    boards: Mapping[str, HitRateBoard], costs: Mapping[str, float | None], count: int
) -> str:
    """The table of both modes: one row per method, HR and NDCG, HR by the user's event
    count, the cost per event and the events scored."""
    from streamrec.benchmarks.results import markdown_table, shown

    header = ["method", f"HR@{count}", f"NDCG@{count}"]
    header += [_count_label(events_before) for events_before in DEFAULT_EVENT_COUNTS]
    header += ["ms per event", "events scored"]
    rows = []
    for board in boards.values():
        by_count = board.by_event_count()
        ndcg = board.ndcg if isinstance(board, RankedHitBoard) else None
        rows.append(
            [board.name, shown(board.hit_rate), shown(ndcg)]
            + [shown(by_count[events_before][0]) for events_before in DEFAULT_EVENT_COUNTS]
            + [shown(costs.get(board.name), 2) if board.name in costs else "", f"{board.events:,}"]
        )
    return markdown_table(header, rows)


def _trainer_note(run: PipelineRun) -> str:
    if run.trainer is None:
        return "The model stayed frozen: no trainer ran during the replay.\n\n"
    runs = run.trainer["runs"]
    outcomes = Counter(each["outcome"] for each in runs)
    listed = ", ".join(f"{number} {outcome}" for outcome, number in sorted(outcomes.items()))
    return (
        f"The scheduled trainer ran {run.trainer['schedule']} on the stream's clock: "
        f"{len(runs)} runs ({listed or 'none'}); {run.trainer['versions_switched']} "
        "versions switched in. The consumer waited for each run at the batch boundary where "
        "it was due.\n\n"
    )


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
    help="Refit the EASE baseline on all events so far every N events [default: 10000].",
)
@click.option(
    "--frozen",
    is_flag=True,
    help="Keep the first model: no trainer runs during the replay (to measure what the "
    "fine-tunes change).",
)
@click.option(
    "--fine-tune-every",
    type=click.IntRange(min=1),
    default=None,
    help="The trainer fine-tunes (and promotes or rejects) every N applied events of the "
    "replay [default: 10000].",
)
@click.option(
    "--fine-tune-every-hours",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Also fine-tune every X hours of event time (whichever comes first).",
)
@click.option("--no-baselines", is_flag=True, help="Measure streamrec only.")
@click.option(
    "--candidates",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Popular unseen items that river's models rank.",
)
@output_options(section="the section for this dataset, batch size and trainer mode")
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
    frozen: bool,
    fine_tune_every: int | None,
    fine_tune_every_hours: float | None,
    no_baselines: bool,
    candidates: int,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """Prequential hit rate of the real pipeline, per consumer batch (or, --in-process, of
    the streaming model in this process, after every event or per batch of B) beside
    streaming baselines judged in the same regime."""
    from streamrec.cli.stopping import stopping_cleanly_on_signals

    # SIGTERM, like Ctrl-C, unwinds the command: the consumer, the trainer runs and the
    # broker are stopped.
    click.get_current_context().with_resource(stopping_cleanly_on_signals())
    if in_process:
        if frozen or fine_tune_every is not None or fine_tune_every_hours is not None:
            raise click.UsageError(
                "--frozen and --fine-tune-every* apply to the pipeline; the in-process "
                "stream runs no trainer"
            )
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
    if frozen and (fine_tune_every is not None or fine_tune_every_hours is not None):
        raise click.UsageError("--frozen runs no trainer: leave out --fine-tune-every*")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from streamrec.benchmarks.results import (
        config_file_in_use,
        options_that_differ,
        replace_section,
        result_stem,
        settings_that_differ,
        write_results,
    )
    from streamrec.benchmarks.stream_clock_trainer import StreamSchedule
    from streamrec.config import changed_model_settings
    from streamrec.datasets.registry import load_dataset

    console = Console()
    # Named before the dataset adapts the settings: the dataset's name says that part.
    differs = options_that_differ(
        click.get_current_context(),
        leave_out={"dataset_name", "limit", "batch_size", "window", "output_dir", "doc"},
    ) + settings_that_differ(changed_model_settings(settings), config_file_in_use())
    if batch_size is not None:
        settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"max_poll_records": batch_size})}
        )
    schedule = (
        None
        if frozen
        else StreamSchedule(fine_tune_every or DEFAULT_FINE_TUNE_EVERY, fine_tune_every_hours)
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
                description=f"pipeline HR@{settings.serving.recommendations} {board.hit_rate:.3f}",
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
            ease_every=ease_every,
            schedule=schedule,
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
    paths.append(
        plot(
            run,
            output_dir / f"{stem}.png",
            title=f"Prequential hit rate of the pipeline, {run.dataset}, {run.regime}, "
            f"{run.model_mode}",
        )
    )
    if doc is not None:
        title, _, body = report.partition("\n")
        replace_section(
            doc,
            title.removeprefix("# ")
            + (f", first {limit:,} events" if limit else "")
            + (f" ({', '.join(differs)})" if differs else ""),
            f"Measured by `streamrec bench prequential`; raw numbers in {stem}.json.\n{body}\n"
            f"![{stem}](../{output_dir.as_posix()}/{stem}.png)\n",
        )
        paths.append(doc)
    console.print("written: " + ", ".join(str(path) for path in paths))
