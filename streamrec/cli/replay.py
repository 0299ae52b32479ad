"""``streamrec replay``: produce a dataset into the input topics, as live producers would.

The items' features go to the items topic first (keyed by item id), then the interactions in
time order to the interactions topic, keyed by user id so that all of a user's events land in
one partition. ``--rate`` paces the interactions; ``--limit`` stops after that many.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.events import InteractionEvent, ItemEvent

if TYPE_CHECKING:
    from kafka import KafkaProducer

# How long the final flush may wait for the broker to acknowledge everything.
FLUSH_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    items: int
    interactions: int
    seconds: float


@click.command(name="replay")
@click.option(
    "--dataset",
    "dataset_name",
    required=True,
    metavar="NAME|PATH",
    help="A dataset name (ml-latest-small, synthetic, ml-1m, ...) or a dataset directory.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    metavar="EVENTS_PER_SECOND",
    help="Pace the interactions at this rate (default: as fast as the broker takes them).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Produce at most N interactions."
)
@click.pass_obj
def command(settings: Settings, dataset_name: str, rate: float | None, limit: int | None) -> None:
    """Produce a dataset's items and interactions into the input topics."""
    from tqdm import tqdm

    from streamrec.datasets.registry import load_dataset
    from streamrec.kafka import create_producer, ensure_topics

    dataset = load_dataset(dataset_name, settings)
    total = len(dataset.table) if limit is None else min(limit, len(dataset.table))
    ensure_topics(settings, [settings.topics.items, settings.topics.interactions])
    producer = create_producer(settings)
    try:
        with tqdm(total=total, unit="event", desc=f"replay {dataset.name}") as bar:
            summary = produce_dataset(
                producer,
                settings,
                dataset.items,
                dataset.events(),
                rate=rate,
                limit=limit,
                on_progress=bar.update,
            )
    finally:
        producer.close(timeout=FLUSH_TIMEOUT_SECONDS)
    click.echo(
        f"produced {summary.items} items and {summary.interactions} interactions "
        f"in {summary.seconds:.1f} s ({summary.interactions / max(summary.seconds, 1e-9):,.0f}/s)"
    )


def produce_dataset(
    producer: KafkaProducer,
    settings: Settings,
    items: Mapping[str, ItemEvent],
    events: Iterable[InteractionEvent],
    *,
    rate: float | None = None,
    limit: int | None = None,
    on_progress: Callable[[int], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Produce ``items`` then ``events`` (at most ``limit``, at most ``rate`` per second) and
    flush. Raises the broker's error if a message was not acknowledged."""
    from streamrec.wire import encode_interaction, encode_item

    started = clock()
    topics = settings.topics
    failures: list[BaseException] = []

    def send(topic: str, key: str, value: bytes) -> None:
        producer.send(topic, key=key.encode("utf-8"), value=value).add_errback(failures.append)

    for item in items.values():
        send(topics.items, item.item_id, encode_item(item))
    producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
    paced_from = clock()
    produced = 0
    for event in islice(events, limit):
        if rate is not None:
            # Ahead of the schedule: wait until this event is due.
            delay = paced_from + produced / rate - clock()
            if delay > 0:
                sleep(delay)
        send(topics.interactions, event.user_id, encode_interaction(event))
        produced += 1
        if on_progress is not None:
            on_progress(1)
    producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
    if failures:
        raise UserFacingError(
            f"{len(failures)} messages were not acknowledged by the broker: {failures[0]}"
        )
    return ReplaySummary(len(items), produced, clock() - started)
