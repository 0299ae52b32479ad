"""MovieLens loaders: ml-100k, ml-1m and ml-latest(-small), plain or gzipped files.

Each becomes a Dataset of explicit ratings, mapped to weights on the dataset's own scale (1-5 for
ml-100k and ml-1m, 0.5-5 for ml-latest), with item features ``genres`` (categorical) and
``year`` (numeric, parsed from the title), and user demographics where the format has them.

>>> release_year("Toy Story (1995)"), release_year("Babylon 5"), release_year("Fargo (1996) ")
(1995.0, None, 1996.0)
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streamrec.datasets.base import Dataset, InteractionTable, RatingScale
from streamrec.datasets.files import (
    READ_ERRORS,
    DatasetFormatError,
    find_data_file,
    find_optional_data_file,
    open_text,
    parse_number,
    read_lines,
)
from streamrec.events import ItemEvent

FIVE_STARS = RatingScale(1.0, 5.0)
HALF_STARS = RatingScale(0.5, 5.0)

# ml-100k's u.item genre columns, in order, for when u.genre is not there.
ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"
# A year in parentheses at the end of a title; ml-latest has series like "(2006-2007)".
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    timestamp: float


def release_year(title: str) -> float | None:
    """The year in parentheses at the end of a MovieLens title, if there is one."""
    match = _TITLE_YEAR.search(title)
    return float(match.group(1)) if match else None


def movie(item_id: str, title: str, genres: Iterable[str]) -> ItemEvent:
    """An item's features; known before the stream starts, hence timestamp 0."""
    year = release_year(title)
    return ItemEvent(
        item_id=item_id,
        timestamp=0.0,
        title=title.strip(),
        categorical={"genres": tuple(genre for genre in genres if genre and genre != NO_GENRES)},
        numeric={} if year is None else {"year": year},
    )


def build_dataset(
    name: str,
    ratings: Iterable[Rating],
    scale: RatingScale,
    items: dict[str, ItemEvent],
    user_attributes: dict[str, dict[str, str]],
) -> Dataset:
    rows = list(ratings)
    if not rows:
        raise DatasetFormatError(f"{name}: the ratings file holds no ratings")
    weights = scale.weights([row.rating for row in rows])
    table = InteractionTable.from_rows(
        (row.user_id, row.item_id, float(weight), row.timestamp, row.rating)
        for row, weight in zip(rows, weights, strict=True)
    )
    return Dataset(
        name=name,
        table=table,
        items=items,
        user_attributes=user_attributes,
        event_type="rating",
        rating_scale=scale,
    )


def load_movielens_100k(directory: Path, name: str = "ml-100k") -> Dataset:
    """u.data (tab-separated ratings), u.item (pipe-separated, genre flags), u.user."""
    ratings_path = find_data_file(directory, "u.data")
    ratings = _delimited_ratings(ratings_path, "\t", FIVE_STARS, encoding="latin-1")
    genre_path = find_optional_data_file(directory, "u.genre")
    genre_names = ML_100K_GENRES if genre_path is None else _genre_names(genre_path)
    items: dict[str, ItemEvent] = {}
    item_path = find_optional_data_file(directory, "u.item")
    if item_path is not None:
        for number, line in read_lines(item_path, encoding="latin-1"):
            fields = _fields(line, "|", 5 + len(genre_names), item_path, number)
            flags = fields[5 : 5 + len(genre_names)]
            if any(flag not in {"0", "1"} for flag in flags):
                raise DatasetFormatError(f"{item_path}:{number}: genre flags must be 0 or 1")
            genres = [genre for genre, flag in zip(genre_names, flags, strict=True) if flag == "1"]
            items[fields[0]] = movie(fields[0], fields[1], genres)
    users: dict[str, dict[str, str]] = {}
    user_path = find_optional_data_file(directory, "u.user")
    if user_path is not None:
        for number, line in read_lines(user_path, encoding="latin-1"):
            user_id, age, gender, occupation, zip_code = _fields(line, "|", 5, user_path, number)
            users[user_id] = {
                "age": age,
                "gender": gender,
                "occupation": occupation,
                "zip": zip_code,
            }
    return build_dataset(name, ratings, FIVE_STARS, items, users)


def load_movielens_1m(directory: Path, name: str = "ml-1m") -> Dataset:
    """ratings*.dat, movies.dat and users.dat, '::'-separated Latin-1 text.

    A ratings file whose name says PARTIAL is a prefix of the original, so its last user may be
    cut short: that user is dropped (for the copy in ../shared/data this keeps users 1..2998).
    """
    ratings_path = find_data_file(directory, "ratings*.dat")
    ratings = list(_delimited_ratings(ratings_path, "::", FIVE_STARS, encoding="latin-1"))
    if "PARTIAL" in ratings_path.name.upper() and ratings:
        truncated_user = ratings[-1].user_id
        ratings = [rating for rating in ratings if rating.user_id != truncated_user]
    items: dict[str, ItemEvent] = {}
    movies_path = find_optional_data_file(directory, "movies.dat")
    if movies_path is not None:
        for number, line in read_lines(movies_path, encoding="latin-1"):
            item_id, title, genres = _fields(line, "::", 3, movies_path, number)
            items[item_id] = movie(item_id, title, genres.split("|"))
    users: dict[str, dict[str, str]] = {}
    users_path = find_optional_data_file(directory, "users.dat")
    if users_path is not None:
        for number, line in read_lines(users_path, encoding="latin-1"):
            user_id, gender, age, occupation, zip_code = _fields(line, "::", 5, users_path, number)
            users[user_id] = {
                "gender": gender,
                "age": age,
                "occupation": occupation,
                "zip": zip_code,
            }
    return build_dataset(name, ratings, FIVE_STARS, items, users)


def load_movielens_latest(directory: Path, name: str = "ml-latest") -> Dataset:
    """ratings.csv (userId,movieId,rating,timestamp) and movies.csv (movieId,title,genres)."""
    ratings_path = find_data_file(directory, "ratings.csv")
    ratings = [
        _rating(record[0], record[1], record[2], record[3], HALF_STARS, ratings_path, number)
        for number, record in _csv_records(ratings_path, ("userId", "movieId", "rating"), 4)
    ]
    items: dict[str, ItemEvent] = {}
    movies_path = find_optional_data_file(directory, "movies.csv")
    if movies_path is not None:
        for _, record in _csv_records(movies_path, ("movieId", "title", "genres"), 3):
            items[record[0]] = movie(record[0], record[1], record[2].split("|"))
    return build_dataset(name, ratings, HALF_STARS, items, {})


def _delimited_ratings(
    path: Path, separator: str, scale: RatingScale, encoding: str
) -> Iterator[Rating]:
    for number, line in read_lines(path, encoding=encoding):
        user_id, item_id, rating, timestamp = _fields(line, separator, 4, path, number)
        yield _rating(user_id, item_id, rating, timestamp, scale, path, number)


def _rating(
    user_id: str,
    item_id: str,
    rating_text: str,
    timestamp_text: str,
    scale: RatingScale,
    path: Path,
    line_number: int,
) -> Rating:
    if not user_id.strip() or not item_id.strip():
        raise DatasetFormatError(f"{path}:{line_number}: empty user or item id")
    rating = parse_number(rating_text, path, line_number, "rating")
    if not scale.minimum <= rating <= scale.maximum:
        raise DatasetFormatError(
            f"{path}:{line_number}: rating {rating_text} outside {scale.minimum}-{scale.maximum}"
        )
    timestamp = parse_number(timestamp_text, path, line_number, "timestamp")
    return Rating(user_id.strip(), item_id.strip(), rating, timestamp)


def _fields(line: str, separator: str, count: int, path: Path, line_number: int) -> list[str]:
    fields = line.split(separator)
    if len(fields) < count:
        raise DatasetFormatError(
            f"{path}:{line_number}: expected {count} {separator!r}-separated fields, "
            f"found {len(fields)}"
        )
    return fields


def _genre_names(path: Path) -> tuple[str, ...]:
    """u.genre lines are 'name|index'; order by index."""
    named: list[tuple[int, str]] = []
    for number, line in read_lines(path, encoding="latin-1"):
        genre, index = _fields(line, "|", 2, path, number)
        named.append((int(parse_number(index, path, number, "genre index")), genre))
    return tuple(genre for _, genre in sorted(named))


def _csv_records(
    path: Path, required_header: tuple[str, ...], count: int
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row of a CSV file with a header row."""
    try:
        with open_text(path) as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if header is None or tuple(header[: len(required_header)]) != required_header:
                raise DatasetFormatError(
                    f"{path}: header must start with {','.join(required_header)}"
                )
            for record in reader:
                if not record:
                    continue
                if len(record) < count:
                    raise DatasetFormatError(
                        f"{path}:{reader.line_num}: expected {count} fields, found {len(record)}"
                    )
                yield reader.line_num, record
    except (*READ_ERRORS, csv.Error) as error:
        raise DatasetFormatError(f"{path}: cannot be read ({error})") from None
