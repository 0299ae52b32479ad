"""``streamrec bench prequential --in-process``: every method judged in one regime, the
streaming model driven in this process.

The command runs for real (through ``streamrec.cli.main.main``) on a small generated stream,
in both regimes, down to the files it writes; streamrec's hits in those files are checked
against a replay of the same stream written out by hand through ``EfficientRecStream``. The
co-occurrence and EASE baselines, and the in-memory state's top-items query the shortlist
refresh reads, are checked on their own. No assertion reads a time.
"""

from __future__ import annotations

import heapq
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.benchmarks import prequential_in_process
from streamrec.benchmarks.initial_model import settings_for_dataset
from streamrec.benchmarks.prequential_in_process import (
    STREAMREC_IN_PROCESS,
    STREAMREC_IN_PROCESS_OWN_LISTS,
)
from streamrec.cli.main import main
from streamrec.config import Settings
from streamrec.datasets.registry import load_dataset
from streamrec.evaluation import prequential_regimes, streaming_neighbours
from streamrec.evaluation.prequential_regimes import (
    StreamingBaselineInBatches,
    accepted_events,
    replay_in_batches,
)
from streamrec.evaluation.streaming_neighbours import ItemCooccurrence, RefittedEASE
from streamrec.events import SourceEvent
from streamrec.model.efficientrec import EfficientRec
from streamrec.model.interaction_rule import AcceptedInteraction
from streamrec.model.memory_state import InMemoryStreamState, RatedMasses
from streamrec.model.serving import ServingModel
from streamrec.model.stream import EfficientRecStream
from streamrec.preferences import preference_weight
from streamrec.services.dataset_training import train_new_model

EVENTS = 420
TRAIN_SHARE = 0.25
STEPS = 3
EASE_EVERY = 100
BASELINES = [
    "popularity",
    "popularity, decayed",
    "river BiasedMF",
    "river FunkMF",
    "co-occurrence",
    f"EASE, refit every {EASE_EVERY} events",
]


@pytest.fixture(scope="module")
def stream_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MovieLens-latest directory: 35 users in four taste groups of 20 films, each rating
    12 films of their group in a burst; the bursts overlap in time, as real sessions do."""
    directory = tmp_path_factory.mktemp("stream")
    rng = random.Random(7)
    genres = ["Comedy", "Drama", "Horror", "Animation"]
    movies = ["movieId,title,genres"] + [
        f"{movie},Film {movie} (2000),{genres[movie // 20]}" for movie in range(80)
    ]
    rows = []
    for user in range(35):
        group = user % 4
        start = 1_000_000 + user * 400
        films = rng.sample(range(group * 20, group * 20 + 20), 12)
        for step, movie in enumerate(films):
            rating = rng.choice([3.0, 3.5, 4.0, 4.5, 5.0])
            rows.append((start + step * 97 + rng.randrange(50), user, movie, rating))
    rows.sort()
    ratings = ["userId,movieId,rating,timestamp"] + [
        f"{user},{movie},{rating},{timestamp}" for timestamp, user, movie, rating in rows
    ]
    (directory / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    (directory / "ratings.csv").write_text("\n".join(ratings) + "\n", encoding="utf-8")
    return directory


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No STREAMREC_* variable reaches the command, and nothing is written outside tmp_path."""
    for name in [name for name in __import__("os").environ if name.startswith("STREAMREC_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def hits_by_hand(directory: Path, batch_size: int) -> dict[int, bool]:
    """streamrec's hit at each scored position, replayed without the benchmark's replay:
    the first model trained as the pipeline trains it, the prefix learned, then per batch
    every user's list from recommend_many before the batch, then learn_many of the batch."""
    settings = Settings()
    dataset = load_dataset(directory, settings)
    settings = settings_for_dataset(settings, dataset)
    events = [
        AcceptedInteraction(
            event,
            preference_weight(event, settings.events),
            SourceEvent("interactions", 0, position, event.timestamp),
        )
        for position, event in enumerate(dataset.events())
    ]
    scored_from = int(len(events) * TRAIN_SHARE)
    model, _ = train_new_model(
        settings, dataset, steps=STEPS, table=dataset.table.subset(slice(0, scored_from))
    )
    stream = EfficientRecStream(
        ServingModel(1, EfficientRec.from_version(*model.to_version())),
        settings.serving,
        InMemoryStreamState(dataset.items),
    )
    stream.record(stream.learn_many(events[:scored_from]))
    hits = {}
    for start in range(scored_from, len(events), batch_size):
        batch = events[start : start + batch_size]
        users = list(dict.fromkeys(accepted.event.user_id for accepted in batch))
        lists = {
            user: [item.item_id for item in items]
            for user, items in zip(users, stream.recommend_many(users), strict=True)
        }
        for position, accepted in enumerate(batch, start):
            hits[position] = accepted.event.item_id in lists[accepted.event.user_id]
        stream.record(stream.learn_many(batch))
    return hits


@pytest.mark.parametrize(
    ("batch_option", "batch_size", "regime_stem", "regime"),
    [
        ([], 1, "after-every-event", "after every event"),
        (["--batch-size", "7"], 7, "batch7", "per batch of 7"),
    ],
)
def test_in_process_mode_writes_its_results_and_judges_streamrec_as_a_replay_by_hand(
    stream_directory: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    batch_option: list[str],
    batch_size: int,
    regime_stem: str,
    regime: str,
) -> None:
    arguments = ["bench", "prequential", "--in-process", "--dataset", str(stream_directory)]
    arguments += ["--train-share", str(TRAIN_SHARE), "--training-steps", str(STEPS)]
    arguments += ["--ease-every", str(EASE_EVERY), "--window", "1", "--output-dir", "results"]
    try:
        main(arguments + batch_option)
    except SystemExit as exit_:
        assert exit_.code in (0, None), capsys.readouterr()

    stem = (
        f"prequential-{stream_directory.name}-in-process-{regime_stem}"
        f"-train-share{TRAIN_SHARE:g}-training-steps{STEPS}-ease-every{EASE_EVERY}"
    )
    results = tmp_path / "results"
    assert sorted(path.name for path in results.iterdir()) == [
        f"{stem}.json",
        f"{stem}.md",
        f"{stem}.png",
    ]
    assert not (tmp_path / "docs").exists()  # no --doc, no document
    data = json.loads((results / f"{stem}.json").read_text(encoding="utf-8"))
    scored = EVENTS - int(EVENTS * TRAIN_SHARE)
    assert (data["mode"], data["regime"], data["batch_size"]) == ("in-process", regime, batch_size)
    assert (data["events"], data["scored_from_position"], data["top_n"]) == (
        EVENTS,
        int(EVENTS * TRAIN_SHARE),
        20,
    )
    methods = {method["method"]: method for method in data["methods"]}
    assert list(methods) == [STREAMREC_IN_PROCESS, STREAMREC_IN_PROCESS_OWN_LISTS, *BASELINES]
    for method in methods.values():
        assert method["events"] == scored
        assert 0.0 <= method["ndcg"] <= method["hit_rate"] <= 1.0
        assert {"0", "1", "3", "10"} <= set(method["by_events_before"])
        assert set(method["ndcg_by_events_before"]) == set(method["by_events_before"])
    assert set(data["cost_per_event_ms"]) == {STREAMREC_IN_PROCESS, *BASELINES}
    served = data["streamrec_events_served_by"]
    assert served["own_list"] + served["fallback"] == scored
    assert served["fallback"] > 0  # the stream brings new users after the prefix
    own = methods[STREAMREC_IN_PROCESS_OWN_LISTS]
    assert own["hit_rate"] <= methods[STREAMREC_IN_PROCESS]["hit_rate"]
    assert own["by_events_before"]["0"]["hit_rate"] in (0.0, None)
    markdown = (results / f"{stem}.md").read_text(encoding="utf-8")
    assert markdown.startswith(f"# In-process prequential hit rate on {stream_directory.name}")
    assert "| method | HR@20 | NDCG@20 |" in markdown

    # With a window of one event, the plotted windows are the hits themselves.
    recorded = {end - 1: rate == 1.0 for end, rate in methods[STREAMREC_IN_PROCESS]["windows"]}
    by_hand = hits_by_hand(stream_directory, batch_size)
    assert recorded == by_hand
    assert any(by_hand.values())


def test_the_in_process_stream_is_the_consumers_view_of_the_events(
    stream_directory: Path,
) -> None:
    """Each event goes through the wire contract and the consumer's weighting."""
    settings = Settings()
    dataset = load_dataset(stream_directory, settings)
    settings = settings_for_dataset(settings, dataset)
    accepted = prequential_in_process.accepted_stream(dataset, settings, limit=20)
    assert [item.event for item in accepted] == list(dataset.events())[:20]
    assert [item.weight for item in accepted] == [
        preference_weight(event, settings.events) for event in list(dataset.events())[:20]
    ]
    assert [item.source.offset for item in accepted] == list(range(20))


def test_a_burst_inside_one_batch_is_judged_against_the_list_from_before_the_batch() -> None:
    """u2 repeats u1's pair of items: after every event co-occurrence answers u2's second
    event from their first; in one batch it cannot."""
    events = accepted_events(
        [("u1", "a", 1.0), ("u1", "b", 1.0), ("u3", "c", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0)]
    )

    def second_event_hit(batch_size: int) -> bool:
        replay = replay_in_batches(
            events,
            StreamingBaselineInBatches(ItemCooccurrence()),
            batch_size=batch_size,
            count=1,
            window=1,
            score_from=3,
        )
        return dict(replay.board.windows())[5] == 1.0

    assert second_event_hit(1)
    assert not second_event_hit(2)


def test_cooccurrence_counts_only_the_users_previous_twenty_items() -> None:
    model = ItemCooccurrence(recent=20)
    for item in range(25):
        model.learn("u1", f"i{item}", 1.0)
    model.learn("u2", "i0", 1.0)
    # i0 was among the previous twenty of i1..i20 only; i21..i24 merely fill the list.
    assert model.recommend("u2", 30, seen={"i0"}) == [f"i{item}" for item in range(1, 25)]
    model.learn("u3", "i24", 1.0)
    # i24 was counted with u1's previous twenty, i4..i23, and with nothing before them.
    assert model.recommend("u3", 20, seen={"i24"}) == [f"i{item}" for item in range(4, 24)]


def test_cooccurrence_divides_by_the_square_root_of_popularity() -> None:
    model = ItemCooccurrence()
    # "hub" co-occurs with "x" twice but is rated by nine users; "niche" once, by one.
    for user in ["a", "b"]:
        model.learn(user, "x", 1.0)
        model.learn(user, "hub", 1.0)
    for user in ["c", "d", "e", "f", "g", "h", "i"]:
        model.learn(user, "hub", 1.0)
    model.learn("j", "x", 1.0)
    model.learn("j", "niche", 1.0)
    # From x: hub 2 / sqrt(9) = 0.67 < niche 1 / sqrt(1) = 1.
    assert model.recommend("k", 2, seen=set()) == ["hub", "x"]  # unknown user: popular
    model.learn("k", "x", 1.0)
    assert model.recommend("k", 2, seen={"x"}) == ["niche", "hub"]


def test_ease_is_refitted_once_enough_events_were_learned() -> None:
    ease = RefittedEASE(refit_every=4, regularization=1.0)
    for user, item in [("u1", "a"), ("u1", "b"), ("u2", "a")]:
        ease.learn(user, item, 1.0)
    assert ease.recommend("u2", 1, seen={"a"}) == ["b"]
    assert (ease.fits, ease.items_scored) == (1, 2)
    for user, item in [("u2", "b"), ("u3", "c"), ("u3", "a")]:
        ease.learn(user, item, 1.0)
    ease.recommend("u1", 1, seen={"a", "b"})
    assert (ease.fits, ease.items_scored) == (1, 2)  # three events since the fit: not yet
    ease.learn("u4", "c", 1.0)
    assert ease.recommend("u1", 1, seen={"a", "b"}) == ["c"]
    assert (ease.fits, ease.items_scored) == (2, 3)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([f"i{number}" for number in range(40)]),
            st.sampled_from([0.0, -0.0, 1e-17, 0.5, 1.0, 2.0, 3.25]),
        ),
        max_size=120,
    ),
    st.integers(min_value=0, max_value=45),
)
def test_most_rated_items_are_those_of_a_full_sort(
    updates: list[tuple[str, float]], count: int
) -> None:
    """The array-backed top items equal a sort of every item by (-mass, item id), the
    database's order, ties at the boundary included."""
    masses = RatedMasses()
    latest: dict[str, float] = {}
    for item_id, mass in updates:
        masses.set(item_id, mass)
        latest[item_id] = mass
    expected = heapq.nsmallest(count, latest, key=lambda item_id: (-latest[item_id], item_id))
    assert masses.most_rated(count) == expected


@pytest.mark.parametrize("module", [prequential_regimes, streaming_neighbours])
def test_examples_in_docstrings_hold(module: object) -> None:
    import doctest

    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]
