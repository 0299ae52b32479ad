"""Choose serving settings (decayed popularity, decayed cluster statistics) on
ml-latest-small: a validation slice, or the whole stream.

Replays the first ``--limit`` events (0: all) in process as ``streamrec bench prequential
--in-process --no-baselines`` does (``accepted_stream``, ``first_model_stream``,
``replay_in_batches``, the same first 20% training the first model), once per setting,
with one first model shared by all of them, and prints HR@20 and the first-event hit rate
of each, beside the decayed-popularity baseline of the bench. Item neighbours are on.

``--event-clock`` replays the events with their position in the stream as their time (in
seconds) and the first model's landmark at the first scored event: every half-life then
counts events, as the decayed-popularity baseline's does (a half-life of 5,000 events is
5,000 / 86,400 days or 5,000 / 3,600 hours). It is an experiment: the served code reads
event times.

    python bench/popularity_validation.py --batch-size 50 \
        '[{}, {"popularity_fallback": true, "popularity_weight": 0.2,
               "popularity_half_life_hours": 720}]'
"""

from __future__ import annotations

import dataclasses
import json

import click

from streamrec.benchmarks.initial_model import settings_for_dataset
from streamrec.benchmarks.prequential_in_process import (
    STREAMREC_IN_PROCESS_OWN_LISTS,
    StreamrecInBatches,
    accepted_stream,
    first_model_stream,
)
from streamrec.config import Settings
from streamrec.datasets import load_dataset
from streamrec.evaluation.prequential_regimes import (
    BatchRecommender,
    StreamingBaselineInBatches,
    replay_in_batches,
)
from streamrec.evaluation.streaming_baselines import StreamingPopularity
from streamrec.model.memory_state import InMemoryStreamState
from streamrec.model.stream import EfficientRecStream


@click.command()
@click.argument("settings_list")
@click.option("--limit", default=30_000, show_default=True)
@click.option("--batch-size", default=1, show_default=True)
@click.option("--event-clock", is_flag=True, help="Time each event by its position.")
def main(settings_list: str, limit: int, batch_size: int, event_clock: bool) -> None:
    """SETTINGS_LIST: a JSON list of model settings to change, one run each."""
    dataset = load_dataset("ml-latest-small", Settings())
    settings = settings_for_dataset(Settings(), dataset)
    events = accepted_stream(dataset, settings, limit or None)
    scored_from = int(len(events) * 0.2)
    first = first_model_stream(settings, dataset, scored_from, 150)
    if event_clock:
        events = [
            dataclasses.replace(
                accepted, event=dataclasses.replace(accepted.event, timestamp=float(position))
            )
            for position, accepted in enumerate(events)
        ]
        model = first.serving.model
        model.architecture = dataclasses.replace(
            model.architecture, statistics_time_landmark=float(scored_from)
        )

    def hit_rates(method: BatchRecommender) -> tuple[float, float]:
        replay = replay_in_batches(
            events,
            method,
            batch_size=batch_size,
            count=settings.serving.recommendations,
            window=1000,
            score_from=scored_from,
            own_lists_name=STREAMREC_IN_PROCESS_OWN_LISTS,
        )
        return replay.board.hit_rate, replay.board.by_event_count()[0][0]

    baseline = StreamingPopularity(half_life_events=max(1.0, len(events) / 20))
    print("popularity, decayed", hit_rates(StreamingBaselineInBatches(baseline)), flush=True)
    for changes in json.loads(settings_list):
        serving = settings.serving.model_copy(update={"neighbours": True, **changes})
        stream = EfficientRecStream(first.serving, serving, InMemoryStreamState(dataset.items))
        print(changes, hit_rates(StreamrecInBatches(stream)), flush=True)


if __name__ == "__main__":
    main()
