"""``streamrec demo``: the whole pipeline on one machine, from nothing, in about a minute.

1. Starts the local broker in the data directory (unless Kafka is configured or a local
   broker already runs), and stops it at the end, also on Ctrl-C, SIGTERM or an error.
2. Uses the configured database, else SQLite in the data directory; migrates it.
3. Trains a first model on the dataset (default: the bundled ml-latest-small) if no model
   version is active, with few steps (``--training-steps``).
4. Runs a consumer (the real loop, in a thread), replays the dataset into the interactions
   topic, and shows live progress and the prequential hit rate read from the
   recommendations topic, beside decayed popularity and item co-occurrence replayed on the
   same events in the consumer's own batches (one regime for all three).
5. Prints a few users' recommendations with item titles, and exits leaving nothing running.

The replay goes into an empty database: replaying events a database already holds changes
nothing. ``--reset`` deletes the demo's SQLite database first (never a configured one).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import click

from streamrec.config import Settings
from streamrec.errors import UserFacingError

DEFAULT_DATASET = "ml-latest-small"
# The pipeline must have judged at least one more event within this time, or the demo stops.
STALL_TIMEOUT_SECONDS = 120.0
SHOWN_RECOMMENDATIONS = 10
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm")


@click.command(name="demo")
@click.option("--dataset", "dataset_name", default=DEFAULT_DATASET, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay N events only.")
@click.option(
    "--training-steps",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Steps of the first model's training (only when no model is active).",
)
@click.option(
    "--users",
    "shown_users",
    type=click.IntRange(min=0, max=20),
    default=3,
    show_default=True,
    help="How many users' recommendations to print at the end.",
)
@click.option("--reset", is_flag=True, help="Delete the demo's SQLite database first.")
@click.pass_obj
def command(
    settings: Settings,
    dataset_name: str,
    limit: int | None,
    training_steps: int,
    shown_users: int,
    reset: bool,
) -> None:
    """Run the whole pipeline locally on a bundled dataset and show what it does."""
    import torch
    from rich.console import Console

    from streamrec.benchmarks.initial_model import settings_for_dataset
    from streamrec.benchmarks.stack import isolated_topics, new_run_id, running_broker
    from streamrec.cli.stopping import stopping_cleanly_on_signals
    from streamrec.datasets.registry import load_dataset
    from streamrec.observability import configure_logging

    # SIGTERM, like Ctrl-C, unwinds the command: the broker and the consumer are stopped.
    click.get_current_context().with_resource(stopping_cleanly_on_signals())
    torch.set_num_threads(1)
    configure_logging(settings.observability.model_copy(update={"log_level": "WARNING"}))
    # kafka-python warns about its own slow event-loop tasks on a busy machine: noise here.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    console = Console()
    dataset = load_dataset(dataset_name, settings)
    settings = settings_for_dataset(settings, dataset)
    events = list(islice(dataset.events(), limit))
    if not events:
        raise UserFacingError(f"dataset {dataset.name} has no events")
    console.print(
        f"[bold]streamrec demo[/]: {len(events):,} events of {dataset.name} "
        f"({len({event.user_id for event in events}):,} users)"
    )
    database_url = _prepare_database(settings, reset, console)
    started = time.perf_counter()
    with running_broker(settings, console.print) as broker:
        run_settings = broker.settings
        if not broker.started_here:
            # A broker that outlives the demo may hold another demo's messages.
            run_settings = isolated_topics(run_settings, new_run_id())
        _run(run_settings, database_url, dataset, events, training_steps, shown_users, console)
    console.print(
        f"done in {time.perf_counter() - started:.0f} s; nothing is left running. "
        "Try `streamrec recommend USER` or `streamrec status` on the same data directory."
    )


def _prepare_database(settings: Settings, reset: bool, console: Any) -> str:
    """Migrate the demo's database (deleting the default SQLite one first with ``reset``);
    refuse one that already holds interactions."""
    from streamrec.storage import UnitOfWork, create_database_engine, masked_url
    from streamrec.storage.migrations import upgrade

    url = settings.effective_database_url
    if reset:
        if settings.database_url is not None:
            raise UserFacingError(
                "--reset only deletes the demo's own SQLite database, not a configured one"
            )
        for suffix in SQLITE_FILE_SUFFIXES:
            Path(f"{settings.data_dir / 'streamrec.db'}{suffix}").unlink(missing_ok=True)
    upgrade(url, timeouts=settings.timeouts)
    engine = create_database_engine(url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            stored = uow.interactions.count()
    finally:
        engine.dispose()
    if stored:
        hint = (
            "`streamrec demo --reset` starts over"
            if settings.database_url is None
            else "point STREAMREC_DATABASE_URL at an empty database"
        )
        raise UserFacingError(
            f"{masked_url(url)} already holds {stored:,} interactions (an earlier demo?); "
            f"replaying a dataset into it would change nothing: {hint}"
        )
    console.print(f"database: {masked_url(url)}")
    return url


def _run(
    settings: Settings,
    database_url: str,
    dataset: Any,
    events: Sequence[Any],
    training_steps: int,
    shown_users: int,
    console: Any,
) -> None:
    from pydantic import SecretStr

    from streamrec.benchmarks.consumer_batches import ConsumerBatchLog, chained_hooks
    from streamrec.benchmarks.consumer_thread import ConsumerThread
    from streamrec.benchmarks.initial_model import active_model_version, train_and_activate
    from streamrec.benchmarks.served_fallback import FallbackRecorder
    from streamrec.kafka import ensure_topics, streamrec_topic_names
    from streamrec.storage import create_database_engine

    settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    engine = create_database_engine(database_url, timeouts=settings.timeouts)
    try:
        version = active_model_version(engine)
        if version is None:
            with console.status(f"training a first model ({training_steps} steps)..."):
                begun = time.perf_counter()
                version = train_and_activate(engine, settings, dataset, steps=training_steps)
            console.print(f"trained model version {version} in {time.perf_counter() - begun:.0f} s")
        else:
            console.print(f"serving the active model version {version}")
        ensure_topics(settings, streamrec_topic_names(settings))
        # A user's events before their first published list are judged against the global
        # list a new user is served (what `streamrec recommend` answers), as the benchmark does.
        fallbacks = FallbackRecorder(settings, engine)
        positions = {event.event_id: n for n, event in enumerate(events)}
        log = ConsumerBatchLog(settings.topics.interactions, positions)
        hooks = chained_hooks(log.on_batch, fallbacks.on_batch)
        with ConsumerThread(settings, engine, hooks=hooks) as consumer:
            _replay_and_watch(settings, dataset, events, consumer, console, fallbacks, log)
            _wait_for_catalogue(engine, len(dataset.items), consumer)
        _show_recommendations(settings, engine, events, shown_users, console)
    finally:
        engine.dispose()


def _replay_and_watch(
    settings: Settings,
    dataset: Any,
    events: Sequence[Any],
    consumer: Any,
    console: Any,
    fallbacks: Any,
    log: Any,
) -> None:
    """Replay in the background; follow the pipeline's output until every event is judged;
    then replay the baselines in the batches the consumer applied."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from streamrec.benchmarks.replay_thread import ReplayThread
    from streamrec.benchmarks.topic_tap import PrequentialTap
    from streamrec.evaluation.prequential import HitRateBoard

    total = len(events)
    count = settings.serving.recommendations
    board = HitRateBoard("streamrec", window=max(1, total // 20))
    positions = {event.event_id: n for n, event in enumerate(events)}
    tap = PrequentialTap(settings, positions, fallbacks=fallbacks)
    replay = ReplayThread(settings, dataset.items, events).start()
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        ) as progress:
            produced = progress.add_task("replayed", total=total, note="into Kafka")
            judged = progress.add_task("applied", total=total, note="")
            last_progress, last_decided = time.monotonic(), 0
            while tap.join.decided < total:
                board.record_outcomes(tap.read())
                if not consumer.alive():
                    consumer.stop()  # raises the loop's error
                    raise UserFacingError("the consumer stopped before the replay was applied")
                if tap.join.decided != last_decided:
                    last_progress, last_decided = time.monotonic(), tap.join.decided
                elif time.monotonic() - last_progress > STALL_TIMEOUT_SECONDS:
                    raise UserFacingError(
                        f"no progress for {STALL_TIMEOUT_SECONDS:.0f} s; the pipeline is stuck"
                    )
                if replay.done():
                    replay.join()  # raises the producer's error
                seconds = max(time.perf_counter() - started, 1e-9)
                progress.update(produced, completed=replay.produced)
                progress.update(
                    judged,
                    completed=tap.join.decided,
                    note=f"{tap.join.decided / seconds:,.0f}/s  HR@{count} {board.hit_rate:.3f}",
                )
            board.record_outcomes(tap.finish())
        replay.join()
    finally:
        replay.cancel()
        tap.close()
    seconds = time.perf_counter() - started
    baselines = _baselines_in_consumer_batches(settings, dataset, events, positions, log, board)
    _print_hit_rates([board, *baselines], count, total, seconds, console)


def _baselines_in_consumer_batches(
    settings: Settings,
    dataset: Any,
    events: Sequence[Any],
    positions: dict[str, int],
    log: Any,
    board: Any,
) -> list[Any]:
    """Decayed popularity and item co-occurrence, each judged per consumer batch as the
    pipeline is: every event against the lists from before its batch, then the batch
    learned (``streamrec.benchmarks.prequential``)."""
    from streamrec.benchmarks.prequential import replay_in_consumer_batches
    from streamrec.evaluation.prequential_regimes import StreamingBaselineInBatches
    from streamrec.evaluation.streaming_baselines import StreamingPopularity
    from streamrec.evaluation.streaming_neighbours import ItemCooccurrence

    methods = [
        StreamingBaselineInBatches(recommender)
        for recommender in (
            StreamingPopularity(half_life_events=max(1.0, len(events) / 20)),
            ItemCooccurrence(),
        )
    ]
    replays = replay_in_consumer_batches(
        dataset,
        settings,
        len(events),
        positions,
        log.batches(),
        methods,
        score_from=0,
        count=settings.serving.recommendations,
        window=board.window,
    )
    return [replay.board for replay in replays.values()]


def _wait_for_catalogue(engine: Any, expected_items: int, consumer: Any) -> None:
    """Wait until the consumer has stored every item of the replay: the items topic is read
    beside the interactions topic and may trail it, and the recommendations shown next
    need the items' titles."""
    from streamrec.storage import UnitOfWork

    deadline = time.monotonic() + STALL_TIMEOUT_SECONDS
    while True:
        with UnitOfWork(engine) as uow:
            if uow.items.count() >= expected_items:
                return
        if not consumer.alive():
            consumer.stop()  # raises the loop's error
            raise UserFacingError("the consumer stopped before the catalogue was stored")
        if time.monotonic() > deadline:
            raise UserFacingError(
                f"the catalogue was not stored within {STALL_TIMEOUT_SECONDS:.0f} s"
            )
        time.sleep(0.2)


def _print_hit_rates(
    boards: Sequence[Any], count: int, total: int, seconds: float, console: Any
) -> None:
    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.evaluation.prequential import DEFAULT_EVENT_COUNTS

    console.print(
        f"{total:,} events replayed and applied in {seconds:.1f} s "
        f"({total / max(seconds, 1e-9):,.0f} events/s end to end, one consumer)"
    )
    table = Table(
        title=f"prequential hit rate: was the event's item in the user's latest top-{count}?"
    )
    table.add_column("method")
    table.add_column(f"HR@{count}", justify="right")
    for events_before in DEFAULT_EVENT_COUNTS:
        label = "first event" if events_before == 0 else f"after {events_before}"
        table.add_column(label, justify="right")
    for board in boards:
        by_count = board.by_event_count()
        table.add_row(
            board.name,
            f"{board.hit_rate:.3f}",
            *("-" if rate is None else f"{rate:.3f}" for rate, _ in by_count.values()),
        )
    print_table(table, console)
    console.print(
        "streamrec's hit rate is read from the recommendations topic: a user's events are "
        "judged by what the pipeline had published before the batch that applied them. The "
        "baselines are replayed in the same batches: each event against the lists from "
        "before its batch, then the batch learned. This first model was trained on the same "
        "data; `streamrec bench prequential` trains on a prefix and compares with more "
        "baselines (docs/quality.md)."
    )


def _show_recommendations(
    settings: Settings, engine: Any, events: Sequence[Any], shown_users: int, console: Any
) -> None:
    """The recommendations of the most active users, with titles and what their scores mean,
    from the stored state; for a user with fewer than SHOWN_RECOMMENDATIONS, why."""
    from rich.table import Table

    from streamrec.cli.display import print_table, score_caption, shortfall_note
    from streamrec.services.recommending import voted_for_user
    from streamrec.storage import UnitOfWork

    users = [user for user, _ in Counter(event.user_id for event in events).most_common()]
    with UnitOfWork(engine) as uow:
        for user_id in users[:shown_users]:
            voted = voted_for_user(uow, user_id, settings.serving, time.time())
            if voted is None:
                return
            message = voted.message
            history = uow.interactions.for_users([user_id]).get(user_id, [])
            liked = sorted(history, key=lambda row: (-row.weight, -row.timestamp))[:3]
            titles = uow.items.get_many(
                [item.item_id for item in message.items] + [row.item_id for row in liked]
            )

            def title(item_id: str, titles: Any = titles) -> str:
                item = titles.get(item_id)
                return item.title if item is not None and item.title else item_id

            # A line of its own, not the table's title: a title wraps at the table's width.
            console.print(
                f"user {user_id}: {len(history)} interactions; liked "
                + "; ".join(title(row.item_id) for row in liked),
                markup=False,
                highlight=False,
            )
            table = Table(
                caption=score_caption(voted.score_scale, settings.serving.rerank_vote_weight),
                caption_justify="left",
            )
            table.add_column("#", justify="right", no_wrap=True)
            table.add_column("recommended")
            table.add_column("score", justify="right", no_wrap=True)
            for rank, item in enumerate(message.items[:SHOWN_RECOMMENDATIONS], start=1):
                table.add_row(str(rank), title(item.item_id), f"{item.score:.3f}")
            print_table(table, console)
            shown = min(len(message.items), SHOWN_RECOMMENDATIONS)
            if shown < SHOWN_RECOMMENDATIONS:
                # The list was filled from every cluster's shortlist (model.short_lists).
                every = {**uow.clusters.shortlists(message.model_version), **voted.shortlists}
                candidates = [item for items in every.values() for item, _ in items]
                seen = [row.item_id for row in history]
                note = shortfall_note(shown, SHOWN_RECOMMENDATIONS, candidates, seen)
                if note is not None:
                    console.print(note, markup=False, highlight=False)
