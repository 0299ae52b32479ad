"""``streamrec bench prequential --in-process``: the prequential hit rate of the streaming
model driven in this process, beside the streaming baselines, every method in one regime.

The replay is the pipeline mode's (``streamrec.benchmarks.prequential``): the dataset's
events in time order, each turned into what the consumer accepts (encoded to the wire,
validated, weighted: ``streamrec.validation``, ``streamrec.preferences``). The first
``--train-share`` trains the first model with the pipeline mode's training function and
steps (``streamrec.services.dataset_training.train_new_model``, one torch thread); every
method learns that prefix without being scored. Then ``EfficientRecStream`` over an
``InMemoryStreamState`` (the consumer's model code, its state in dictionaries) and each
baseline are replayed in one regime (``streamrec.evaluation.prequential_regimes``):

- after every event (no ``--batch-size``): each event is judged against its user's list as
  it stands (``recommend_many``: a user without a profile gets the global fallback, as the
  pipeline serves one), then learned (one ``learn_many`` per event);
- per batch of B events (``--batch-size B``): all events of a batch are judged against the
  lists from before the batch, then the batch is learned (one ``learn_many``).

The in-process stream recomputes the shortlists a batch changed in every batch; the
consumer does so at most once per ``serving.shortlist_refresh_seconds``.

Baselines: popularity, decayed popularity, river's BiasedMF and FunkMF
(``streamrec.evaluation.streaming_baselines``), item co-occurrence and EASE refitted every
``--ease-every`` events (``streamrec.evaluation.streaming_neighbours``). Results go to
bench/results/prequential-<dataset>[-<limit>]-in-process-<after-every-event|batch<B>>
[-<what else differs>].{json,md,png}, and to a section of ``--doc`` when given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import click

from streamrec.benchmarks.prequential import PrequentialRun
from streamrec.config import Settings
from streamrec.datasets.base import Dataset
from streamrec.evaluation.prequential import DEFAULT_EVENT_COUNTS
from streamrec.evaluation.prequential_regimes import (
    BatchRecommender,
    RankedHitBoard,
    ReplayScore,
    StreamingBaselineInBatches,
    replay_in_batches,
)
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.stream import EfficientRecStream

STREAMREC_IN_PROCESS = "streamrec (in process)"
STREAMREC_IN_PROCESS_OWN_LISTS = "streamrec (in process), own lists only"
# EASE is refitted on all events so far once this many more were learned (--ease-every).
DEFAULT_EASE_EVERY = 10_000
# The version number the in-process stream serves under (it names no stored version).
IN_PROCESS_VERSION = 1


class StreamrecInBatches:
    """``EfficientRecStream`` as a ``BatchRecommender`` of the regime replay: its lists are
    ``recommend_many`` of the state as it stands, and each batch is one ``learn_many``."""

    def __init__(self, stream: EfficientRecStream, name: str = STREAMREC_IN_PROCESS) -> None:
        self.stream = stream
        self.name = name

    def recommend_many(self, user_ids: Sequence[str], count: int) -> list[list[str]]:
        return [
            [item.item_id for item in items]
            for items in self.stream.recommend_many(user_ids, count)
        ]

    def learn_many(self, events: Sequence[AcceptedInteraction]) -> None:
        # The replay judges each event against recommend_many's lists itself.
        self.stream.record(self.stream.learn_many(events, prequential_hits=False))

    def without_own_list(self, user_ids: Collection[str]) -> set[str]:
        """The users the model has no profile for: they are served the global fallback."""
        _, profiles = self.stream.state.interactions_and_profiles(user_ids)
        return set(user_ids) - profiles.keys()


@dataclass
class InProcessRun(PrequentialRun):
    """A ``PrequentialRun`` of the in-process mode: one regime (``batch_size`` 1 is after
    every event) and each method's replay (board, time)."""

    batch_size: int = 1
    replays: dict[str, ReplayScore] = field(default_factory=dict)

    @property
    def regime(self) -> str:
        return regime_text(self.batch_size)

    def cost_per_event_ms(self) -> dict[str, float | None]:
        """Each method's answering and learning per scored event, in milliseconds."""
        return {
            name: replay.seconds.per_event_ms(replay.board.events)
            for name, replay in self.replays.items()
        }

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        del data["pipeline_events_served_by"], data["pipeline_events_unanswered"]
        return {
            **data,
            "mode": "in-process",
            "regime": self.regime,
            "batch_size": self.batch_size,
            "streamrec_events_served_by": self.served,
            "cost_per_event_ms": self.cost_per_event_ms(),
            "method_seconds": {
                name: {
                    "warm_up": replay.seconds.warm_up,
                    "answering": replay.seconds.answering,
                    "learning": replay.seconds.learning,
                }
                for name, replay in self.replays.items()
            },
        }


def regime_text(batch_size: int) -> str:
    """How a regime is named in reports.

    >>> regime_text(1), regime_text(50)
    ('after every event', 'per batch of 50')
    """
    return "after every event" if batch_size == 1 else f"per batch of {batch_size:,}"


def regime_stem(batch_size: int) -> str:
    """The regime's part of a result file's name.

    >>> regime_stem(1), regime_stem(50)
    ('after-every-event', 'batch50')
    """
    return "after-every-event" if batch_size == 1 else f"batch{batch_size}"


def accepted_stream(
    dataset: Dataset, settings: Settings, limit: int | None = None
) -> list[AcceptedInteraction]:
    """The first ``limit`` events of ``dataset`` as the consumer accepts them: each encoded
    to the wire, validated and weighted as ``streamrec.services.triage`` does (an event it
    would refuse is left out); positions as offsets of one partition."""
    from streamrec.events import SourceEvent
    from streamrec.preferences import preference_weight
    from streamrec.validation import Rejection, parse_interaction
    from streamrec.wire import encode_interaction

    accepted = []
    for position, event in enumerate(islice(dataset.events(), limit)):
        parsed = parse_interaction(
            encode_interaction(event), settings.events, key=event.user_id.encode("utf-8")
        )
        if isinstance(parsed, Rejection):
            continue
        source = SourceEvent(settings.topics.interactions, 0, position, parsed.timestamp)
        weight = preference_weight(parsed, settings.events)
        accepted.append(AcceptedInteraction(parsed, weight, source))
    return accepted


def first_model_stream(
    settings: Settings, dataset: Dataset, prefix_events: int, training_steps: int
) -> EfficientRecStream:
    """The stream the pipeline mode would serve: the first model trained on the first
    ``prefix_events`` of the table (all of it when 0) as the pipeline mode trains it, read
    back from its stored form as a consumer loads it, over an empty in-memory state that
    knows the dataset's items."""
    import torch

    from streamrec.model.efficientrec import EfficientRec
    from streamrec.model.memory_state import InMemoryStreamState
    from streamrec.model.serving import ServingModel
    from streamrec.services.dataset_training import train_new_model

    torch.set_num_threads(1)
    table = dataset.table.subset(slice(0, prefix_events)) if prefix_events else dataset.table
    model, _ = train_new_model(settings, dataset, steps=training_steps, table=table)
    served = EfficientRec.from_version(*model.to_version())
    return EfficientRecStream(
        ServingModel(IN_PROCESS_VERSION, served),
        settings.serving,
        InMemoryStreamState(dataset.items),
    )


def baseline_methods(
    events: int, candidates: int, ease_every: int
) -> list[StreamingBaselineInBatches]:
    """The baselines of the table, each answering a batch before learning it."""
    from streamrec.evaluation.streaming_baselines import StreamingPopularity, river_baselines
    from streamrec.evaluation.streaming_neighbours import ItemCooccurrence, RefittedEASE

    return [
        StreamingBaselineInBatches(recommender)
        for recommender in [
            StreamingPopularity(),
            StreamingPopularity(half_life_events=max(1.0, events / 20)),
            *river_baselines(candidates=candidates),
            ItemCooccurrence(),
            RefittedEASE(refit_every=ease_every),
        ]
    ]


def run_in_process(
    settings: Settings,
    dataset: Dataset,
    *,
    limit: int | None,
    train_share: float,
    training_steps: int,
    window: int,
    batch_size: int = 1,
    baselines: bool = True,
    candidates: int = 100,
    ease_every: int = DEFAULT_EASE_EVERY,
    announce: Callable[[str], None] = print,
    on_progress: Callable[[str, int, int, RankedHitBoard], None] | None = None,
) -> InProcessRun:
    """Replay ``dataset`` through the in-process stream and the baselines in one regime
    (module text). ``on_progress`` is told the method, the events replayed and the total."""
    from streamrec.benchmarks.initial_model import settings_for_dataset

    settings = settings_for_dataset(settings, dataset)
    events = accepted_stream(dataset, settings, limit)
    if not events:
        raise click.ClickException(f"dataset {dataset.name} has no events")
    scored_from = int(len(events) * train_share)
    count = settings.serving.recommendations
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    stream = first_model_stream(settings, dataset, scored_from, training_steps)
    seconds["training"] = time.perf_counter() - started
    announce(
        f"first model: {training_steps} steps on the first {scored_from or len(events):,} "
        f"events; replaying {len(events):,} events {regime_text(batch_size)}"
    )
    methods: list[BatchRecommender] = [StreamrecInBatches(stream)]
    if baselines:
        methods += baseline_methods(len(events), candidates, ease_every)
    replays: dict[str, ReplayScore] = {}
    for method in methods:

        def progress(done: int, board: RankedHitBoard, name: str = method.name) -> None:
            if on_progress is not None:
                on_progress(name, done, len(events), board)

        started = time.perf_counter()
        replays[method.name] = replay_in_batches(
            events,
            method,
            batch_size=batch_size,
            count=count,
            window=window,
            score_from=scored_from,
            own_lists_name=STREAMREC_IN_PROCESS_OWN_LISTS,
            on_progress=progress,
        )
        seconds[method.name] = time.perf_counter() - started
    streamrec = replays[STREAMREC_IN_PROCESS]
    boards = {name: replay.board for name, replay in replays.items()}
    if streamrec.own_lists is not None:
        boards = {
            STREAMREC_IN_PROCESS: streamrec.board,
            STREAMREC_IN_PROCESS_OWN_LISTS: streamrec.own_lists,
            **boards,
        }
    scored = streamrec.board.events
    return InProcessRun(
        dataset=dataset.name,
        events=len(events),
        scored_from=scored_from,
        recommendations=count,
        boards=dict(boards),
        seconds=seconds,
        settings={
            "train_share": train_share,
            "training_steps": training_steps,
            "window": window,
            "candidates_for_river": candidates,
            "ease_every": ease_every,
            "shortlist_refresh": "every batch",
            "model": settings.model.model_dump(),
            "serving": settings.serving.model_dump(),
        },
        served={
            "own_list": scored - streamrec.fallback_events,
            "fallback": streamrec.fallback_events,
        },
        batch_size=batch_size,
        replays=replays,
    )


def markdown_report(run: InProcessRun) -> str:
    from streamrec.benchmarks.results import markdown_table, shown

    n = run.recommendations
    header = ["method", f"HR@{n}", f"NDCG@{n}"]
    header += ["first event" if k == 0 else f"after {k}" for k in DEFAULT_EVENT_COUNTS]
    header += ["ms per event", "events scored"]
    costs = run.cost_per_event_ms()
    rows = []
    for board in run.boards.values():
        by_count = board.by_event_count()
        ndcg = board.ndcg if isinstance(board, RankedHitBoard) else None
        cost = costs.get(board.name)
        rows.append(
            [board.name, shown(board.hit_rate), shown(ndcg)]
            + [shown(by_count[count][0]) for count in DEFAULT_EVENT_COUNTS]
            + [shown(cost, 2) if board.name in costs else "", f"{board.events:,}"]
        )
    regime = (
        "each event is judged against its user's list as it stands, then learned"
        if run.batch_size == 1
        else f"the events of each batch of {run.batch_size:,} are judged against the lists "
        "from before the batch, then the batch is learned"
    )
    scored = sum(run.served.values())
    fallback = run.served.get("fallback", 0)
    intro = (
        f"# In-process prequential hit rate on {run.dataset}, {run.regime}\n\n"
        f"{run.events:,} events replayed in time order in this process; the first "
        f"{run.scored_from:,} trained the first model and are learned by every method, not "
        f"scored. Then, for every method, {regime}. streamrec is `EfficientRecStream` over "
        "an in-memory state (the consumer's model code), its shortlists refreshed every "
        f"batch. HR@{n} and NDCG@{n}: the event's item in the user's top {n} (NDCG: "
        "1/log2(rank + 2)). Columns 'after k' give HR of events that had k earlier events of "
        "the same user; 'ms per event': answering and learning per scored event, on this "
        "machine.\n\n"
        + (
            f"A user without a profile is served the global fallback: {fallback:,} of the "
            f"{scored:,} scored streamrec events ({fallback / scored:.1%}). "
            f"'{STREAMREC_IN_PROCESS_OWN_LISTS}' counts them as misses.\n\n"
            if scored
            else ""
        )
    )
    return intro + markdown_table(header, rows)


def run_command(
    settings: Settings,
    *,
    dataset_name: str,
    limit: int | None,
    train_share: float,
    training_steps: int,
    window: int | None,
    batch_size: int | None,
    no_baselines: bool,
    candidates: int,
    ease_every: int | None,
    output_dir: Path,
    doc: Path | None,
) -> None:
    """The body of ``streamrec bench prequential --in-process``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from streamrec.benchmarks.prequential import plot
    from streamrec.benchmarks.results import (
        replace_section,
        result_stem,
        run_differences,
        write_results,
    )
    from streamrec.config import changed_model_settings
    from streamrec.datasets.registry import load_dataset

    console = Console()
    differs = run_differences(
        changed_model_settings(settings),
        leave_out={"dataset_name", "limit", "batch_size", "in_process", "window"},
    )
    regime_batch = batch_size or 1
    dataset = load_dataset(dataset_name, settings)
    total = len(dataset.table) if limit is None else min(limit, len(dataset.table))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        tasks: dict[str, Any] = {}

        def show(name: str, done: int, events: int, board: RankedHitBoard) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=events)
            progress.update(
                tasks[name],
                completed=done,
                description=f"{name} HR@{settings.serving.recommendations} {board.hit_rate:.3f}",
            )

        run = run_in_process(
            settings,
            dataset,
            limit=limit,
            train_share=train_share,
            training_steps=training_steps,
            window=window or max(1, total // 50),
            batch_size=regime_batch,
            baselines=not no_baselines,
            candidates=candidates,
            ease_every=ease_every or DEFAULT_EASE_EVERY,
            announce=console.print,
            on_progress=show,
        )
    report = markdown_report(run)
    console.print(report)
    stem = result_stem(
        "prequential",
        dataset.name,
        str(limit) if limit else None,
        "in-process",
        regime_stem(regime_batch),
        *differs,
    )
    paths = write_results(output_dir, stem, run.to_dict(), report)
    paths.append(
        plot(
            run,
            output_dir / f"{stem}.png",
            title=f"In-process prequential hit rate, {run.dataset}, {run.regime}",
        )
    )
    if doc is not None:
        title, _, body = report.partition("\n")
        replace_section(
            doc,
            title.removeprefix("# ")
            + (f", first {limit:,} events" if limit else "")
            + (f" ({', '.join(differs)})" if differs else ""),
            f"Measured by `streamrec bench prequential --in-process`; raw numbers in "
            f"{stem}.json.\n{body}\n![{stem}](../{output_dir.as_posix()}/{stem}.png)\n",
        )
        paths.append(doc)
    console.print("written: " + ", ".join(str(path) for path in paths))


__all__ = [
    "InProcessRun",
    "StreamrecInBatches",
    "accepted_stream",
    "first_model_stream",
    "markdown_report",
    "run_in_process",
]
