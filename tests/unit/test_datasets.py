"""Dataset loaders on small fixture files in every format, the registry, and the synthetic
stream."""

from __future__ import annotations

import gzip
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from streamrec.config import Settings
from streamrec.datasets.amazon import load_amazon_sequences
from streamrec.datasets.base import Dataset
from streamrec.datasets.files import DatasetFormatError
from streamrec.datasets.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
    release_year,
)
from streamrec.datasets.registry import DatasetFormat, detect_format, load_dataset
from streamrec.datasets.synthetic import (
    SyntheticConfig,
    SyntheticStream,
    item_name,
    user_index_of,
)
from streamrec.errors import UserFacingError

DATA = Path(__file__).resolve().parents[1] / "data"


def rows_of(dataset: Dataset) -> list[tuple[str, str, float, float, float]]:
    table = dataset.table
    return [
        (
            table.user_vocabulary[table.users[row]],
            table.item_vocabulary[table.items[row]],
            float(table.weights[row]),
            float(table.timestamps[row]),
            float(table.ratings[row]),
        )
        for row in range(len(table))
    ]


def test_movielens_100k_reads_ratings_genre_flags_years_and_users() -> None:
    dataset = load_movielens_100k(DATA / "ml-100k")
    rows = rows_of(dataset)
    assert len(rows) == 6
    assert [row[3] for row in rows] == sorted(row[3] for row in rows)
    weights = {(user, item): weight for user, item, weight, _, _ in rows}
    assert weights["1", "10"] == 1.0 and weights["2", "10"] == -1.0 and weights["1", "20"] == 0.0
    assert dataset.items["10"].categorical["genres"] == ("Animation", "Comedy")
    assert dataset.items["10"].numeric == {"year": 1995.0}
    assert dataset.items["20"].title == "Cité des enfants perdus, La (1995)"  # Latin-1
    assert dataset.items["30"].categorical["genres"] == () and dataset.items["30"].numeric == {}
    assert dataset.user_attributes["2"] == {
        "age": "53",
        "gender": "F",
        "occupation": "other",
        "zip": "94043",
    }
    assert dataset.rating_scale is not None and dataset.rating_scale.minimum == 1.0


def test_movielens_1m_gzipped_drops_the_last_user_of_a_partial_ratings_file() -> None:
    dataset = load_movielens_1m(DATA / "ml-1m")
    assert sorted(set(dataset.table.user_vocabulary[u] for u in dataset.table.users)) == ["1", "2"]
    assert len(dataset.table) == 5
    assert dataset.items["661"].categorical["genres"] == ("Animation", "Children's", "Musical")
    assert dataset.items["914"].numeric == {"year": 1964.0}
    assert dataset.items["2000"].title == "Ménage (1986)"
    assert dataset.user_attributes["1"]["gender"] == "F"
    assert dataset.user_attributes["1"]["occupation"] == "10"


def test_movielens_1m_keeps_every_user_of_a_complete_ratings_file(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::5::3::10\n2::5::4::11\n", encoding="latin-1")
    dataset = load_movielens_1m(tmp_path)
    assert len(dataset.table) == 2
    assert dataset.items == {}  # movies.dat is optional


def test_movielens_latest_reads_csv_half_stars_and_quoted_titles() -> None:
    dataset = load_movielens_latest(DATA / "ml-latest")
    weights = {(user, item): weight for user, item, weight, _, _ in rows_of(dataset)}
    assert weights["1", "3"] == -1.0 and weights["1", "6"] == 1.0 and weights["2", "1"] == 0.0
    assert dataset.items["11"].title == "American President, The (1995)"
    assert dataset.items["40697"].categorical["genres"] == ()
    assert dataset.items["40697"].numeric == {}
    assert dataset.user_attributes == {}


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("Heat (1995)", 1995.0),
        ("Fargo (1996) ", 1996.0),
        ("Cosmos (1980-1981)", 1980.0),
        ("Babylon 5", None),
        ("1984 (1956)", 1956.0),
    ],
)
def test_release_year_comes_from_the_end_of_the_title(title: str, year: float | None) -> None:
    assert release_year(title) == year


def test_amazon_sequences_keep_each_users_order_with_synthesised_timestamps() -> None:
    dataset = load_amazon_sequences(DATA / "amazon-toys")
    assert dataset.name == "amazon-toys"
    assert dataset.event_type == "purchase"
    by_user: dict[str, list[tuple[float, str]]] = {}
    for user, item, weight, timestamp, rating in rows_of(dataset):
        assert weight == 1.0 and np.isnan(rating)
        by_user.setdefault(user, []).append((timestamp, item))
    assert [item for _, item in by_user["3"]] == ["7", "5", "8", "9"]
    assert all(
        [timestamp for timestamp, _ in sequence] == list(range(len(sequence)))
        for sequence in by_user.values()
    )
    assert dataset.items["5"].categorical == {"attributes": ("1", "2")}


def test_replayed_events_carry_the_raw_rating_and_attributes() -> None:
    dataset = load_movielens_100k(DATA / "ml-100k")
    events = list(dataset.events())
    assert len(events) == len(dataset.table)
    first = events[0]
    assert first.type == "rating" and first.value in {1.0, 2.0, 3.0, 4.0, 5.0}
    assert first.user_attributes == dataset.user_attributes[first.user_id]


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("ml-100k", DatasetFormat.MOVIELENS_100K),
        ("ml-1m", DatasetFormat.MOVIELENS_1M),
        ("ml-latest", DatasetFormat.MOVIELENS_LATEST),
        ("amazon-toys", DatasetFormat.AMAZON_SEQUENCES),
    ],
)
def test_the_format_is_detected_from_the_files_present(
    directory: str, expected: DatasetFormat
) -> None:
    assert detect_format(DATA / directory) is expected
    assert len(load_dataset(DATA / directory, Settings()).table) > 0


def test_names_resolve_under_the_datasets_directory() -> None:
    settings = Settings(datasets_dir=DATA)
    dataset = load_dataset("ml-100k", settings)
    assert dataset.name == "ml-100k" and len(dataset.table) == 6


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is the Linux convention")
def test_names_are_looked_up_in_the_users_data_directory_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STREAMREC_DATASETS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings().datasets_dir == tmp_path / "streamrec" / "datasets"
    (tmp_path / "streamrec" / "datasets").mkdir(parents=True)
    (tmp_path / "streamrec" / "datasets" / "ml-100k").symlink_to(DATA / "ml-100k")
    assert load_dataset("ml-100k", Settings()).name == "ml-100k"


def test_a_missing_dataset_says_where_it_looked(tmp_path: Path) -> None:
    settings = Settings(datasets_dir=tmp_path)
    with pytest.raises(UserFacingError) as missing:
        load_dataset("ml-1m", settings)
    message = str(missing.value)
    assert "\n" not in message and str(tmp_path / "ml-1m") in message
    with pytest.raises(UserFacingError, match="not a known name"):
        load_dataset("no-such-dataset", settings)


def test_a_directory_without_a_known_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("nothing to see")
    with pytest.raises(UserFacingError, match="no known dataset format"):
        load_dataset(tmp_path, Settings())


def test_the_bundled_dataset_ships_with_its_licence() -> None:
    dataset = load_dataset("ml-latest-small", Settings(datasets_dir=Path("/nonexistent")))
    assert len(dataset.table) == 100_836 and len(set(dataset.table.users.tolist())) == 610
    from streamrec.datasets.registry import bundled_directory

    with gzip.open(bundled_directory("ml-latest-small") / "README.txt.gz", "rt") as readme:
        assert "Usage License" in readme.read()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("1\t10\t5\n", "expected 4"),
        ("1\t10\tfive\t100\n", "rating 'five' is not a number"),
        ("1\t10\t9\t100\n", "outside 1.0-5.0"),
        ("1\t10\t5\tnan\n", "timestamp 'nan' is not finite"),
    ],
)
def test_a_malformed_line_is_named_with_its_reason(
    tmp_path: Path, content: str, reason: str
) -> None:
    (tmp_path / "u.data").write_text("1\t10\t5\t99\n" + content)
    with pytest.raises(DatasetFormatError) as bad:
        load_movielens_100k(tmp_path)
    assert "u.data:2: " in str(bad.value) and reason in str(bad.value)


def test_a_corrupt_gzip_file_is_reported_not_raised_raw(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    with pytest.raises(DatasetFormatError, match="cannot be read"):
        load_movielens_latest(tmp_path)


def test_a_csv_with_a_wrong_header_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("user,item,score,time\n1,2,3,4\n")
    with pytest.raises(DatasetFormatError, match="header must start with userId"):
        load_movielens_latest(tmp_path)


def test_an_amazon_user_listed_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Shop.txt").write_text("1 2 3\n1 4\n")
    with pytest.raises(DatasetFormatError, match=r"Shop\.txt:2: user 1 appears twice"):
        load_amazon_sequences(tmp_path)


SMALL = SyntheticConfig(users=120, items=200, groups=6, items_per_group=20, seed=3)


def test_the_synthetic_stream_is_reproducible_and_seeded() -> None:
    first = list(SyntheticStream(SMALL).events())
    again = list(SyntheticStream(SMALL).events())
    other_seed = SyntheticConfig(**{**SMALL.__dict__, "seed": 4})
    assert first == again
    assert first != list(SyntheticStream(other_seed).events())
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(first))


def test_a_user_is_regenerated_from_seed_and_index_alone() -> None:
    stream = SyntheticStream(SMALL)
    from_stream = [event for event in stream.events() if event.user_id == "u57"]
    regenerated = sorted(SyntheticStream(SMALL).user_events(57), key=lambda e: e.timestamp)
    assert from_stream == regenerated
    items = [event.item_id for event in regenerated]
    assert len(items) == len(set(items))
    assert SMALL.min_events_per_user <= len(items) <= SMALL.max_events_per_user


def test_users_mostly_rate_items_of_their_planted_groups_high() -> None:
    stream = SyntheticStream(SMALL)
    in_groups = high = total = 0
    for user in range(SMALL.users):
        groups = stream.user_groups(user)
        assert 1 <= len(groups) <= 3 and abs(sum(w for _, w in groups) - 1.0) < 1e-9
        preferred = {item_name(int(i)) for g, _ in groups for i in stream.group_items(g)}
        for event in stream.user_events(user):
            total += 1
            if event.item_id in preferred:
                in_groups += 1
                high += event.value is not None and event.value >= 4
    assert in_groups / total > 1 - SMALL.noise - 0.05
    assert high / in_groups > 0.9  # noise items may fall in a group too, and are rated low


def test_after_the_drift_groups_prefer_their_new_items() -> None:
    config = SyntheticConfig(**{**SMALL.__dict__, "drift_at": 0.5, "noise": 0.0})
    stream = SyntheticStream(config)
    assert stream.drift_time is not None
    old_only = new_only = 0
    for event in stream.events():
        groups = stream.user_groups(user_index_of(event.user_id))
        before = {item_name(int(i)) for g, _ in groups for i in stream.group_items(g)}
        after = {item_name(int(i)) for g, _ in groups for i in stream.group_items(g, True)}
        if event.timestamp >= stream.drift_time:
            assert event.item_id in after
            new_only += event.item_id not in before
        else:
            assert event.item_id in before
            old_only += event.item_id not in after
    assert old_only > 0 and new_only > 0


class CountingStream(SyntheticStream):
    """Counts the users generated, to show that streaming does not materialise them all."""

    def __init__(self, config: SyntheticConfig) -> None:
        super().__init__(config)
        self.generated_users = 0

    def user_trace(self, user_index: int):  # type: ignore[no-untyped-def]
        self.generated_users += 1
        return super().user_trace(user_index)


def test_a_million_user_stream_starts_without_materialising_the_users() -> None:
    config = SyntheticConfig(users=1_000_000, items=100_000, groups=50, users_per_block=200)
    stream = CountingStream(config)
    first_events = list(itertools.islice(stream.events(), 10))
    assert len(first_events) == 10
    assert stream.generated_users == config.users_per_block
    with pytest.raises(ValueError, match="iterate events"):
        stream.to_dataset()


def test_the_small_synthetic_dataset_materialises() -> None:
    dataset = load_dataset("synthetic", Settings())
    assert dataset.name == "synthetic" and len(dataset.table) > 0
    assert dataset.rating_scale is not None
    assert set(dataset.table.ratings.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_an_invalid_synthetic_config_names_the_problem() -> None:
    with pytest.raises(ValueError, match="items_per_group"):
        SyntheticConfig(items=10, items_per_group=20)
