"""Resolving a dataset name or directory to a loaded Dataset.

Names: ``ml-latest-small`` (bundled with the package), ``ml-1m``, ``ml-100k``, ``ml-latest``,
``amazon-beauty`` (alias ``beauty``), looked up under ``settings.datasets_dir``, and
``synthetic`` (a small generated stream). Anything else is taken as a directory path. The
format of a directory is recognised by the files in it, so a renamed copy loads too.

>>> from streamrec.config import Settings
>>> dataset = load_dataset("ml-latest-small", Settings())
>>> dataset.name, len(dataset.table.user_vocabulary)
('ml-latest-small', 610)
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from importlib import resources
from pathlib import Path

from streamrec.config import Settings
from streamrec.datasets.amazon import load_amazon_sequences, sequence_file
from streamrec.datasets.base import Dataset
from streamrec.datasets.files import find_optional_data_file
from streamrec.datasets.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
)
from streamrec.datasets.synthetic import SyntheticConfig, SyntheticStream
from streamrec.errors import UserFacingError

BUNDLED = "ml-latest-small"
SYNTHETIC = "synthetic"
# Known names and the directory each lives in under settings.datasets_dir.
NAMED_DIRECTORIES = {
    "ml-1m": "ml-1m",
    "ml-100k": "ml-100k",
    "ml-latest": "ml-latest",
    "amazon-beauty": "amazon-beauty",
    "beauty": "amazon-beauty",
}


class DatasetFormat(StrEnum):
    MOVIELENS_100K = "ml-100k"
    MOVIELENS_1M = "ml-1m"
    MOVIELENS_LATEST = "ml-latest"
    AMAZON_SEQUENCES = "amazon-sequences"


LOADERS: dict[DatasetFormat, Callable[[Path, str], Dataset]] = {
    DatasetFormat.MOVIELENS_100K: load_movielens_100k,
    DatasetFormat.MOVIELENS_1M: load_movielens_1m,
    DatasetFormat.MOVIELENS_LATEST: load_movielens_latest,
    DatasetFormat.AMAZON_SEQUENCES: load_amazon_sequences,
}


def dataset_names() -> list[str]:
    return sorted({BUNDLED, SYNTHETIC, *NAMED_DIRECTORIES})


def detect_format(directory: Path) -> DatasetFormat | None:
    """The format of the dataset files in directory, or None if none is recognised."""
    if find_optional_data_file(directory, "u.data") is not None:
        return DatasetFormat.MOVIELENS_100K
    if find_optional_data_file(directory, "ratings*.dat") is not None:
        return DatasetFormat.MOVIELENS_1M
    if find_optional_data_file(directory, "ratings.csv") is not None:
        return DatasetFormat.MOVIELENS_LATEST
    if sequence_file(directory) is not None:
        return DatasetFormat.AMAZON_SEQUENCES
    return None


def load_directory(directory: Path, name: str | None = None) -> Dataset:
    """Load the dataset in directory, whatever its format; name defaults to the folder's."""
    if not directory.is_dir():
        raise UserFacingError(f"dataset directory {directory} does not exist")
    dataset_format = detect_format(directory)
    if dataset_format is None:
        raise UserFacingError(
            f"no known dataset format in {directory} (expected u.data, ratings*.dat, "
            "ratings.csv or an Amazon <Name>.txt sequence file, plain or .gz)"
        )
    if dataset_format is DatasetFormat.AMAZON_SEQUENCES and name is None:
        return load_amazon_sequences(directory)
    return LOADERS[dataset_format](directory, name or directory.resolve().name)


def load_dataset(name_or_path: str | Path, settings: Settings) -> Dataset:
    """A known dataset name, or a directory holding a dataset in a recognised format.

    Raises UserFacingError, in one line saying where it looked, when nothing is found.
    """
    text = str(name_or_path)
    key = text.lower()
    if key == SYNTHETIC:
        return SyntheticStream(SyntheticConfig()).to_dataset()
    if key == BUNDLED:
        return load_directory(bundled_directory(BUNDLED), BUNDLED)
    if key in NAMED_DIRECTORIES:
        directory = settings.datasets_dir / NAMED_DIRECTORIES[key]
        if not directory.is_dir():
            raise UserFacingError(
                f"dataset {text!r} not found: looked in {directory.resolve()} "
                "(set STREAMREC_DATASETS_DIR or datasets_dir in the config file)"
            )
        canonical = "amazon-beauty" if NAMED_DIRECTORIES[key] == "amazon-beauty" else key
        return load_directory(directory, canonical)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_directory(path)
    under_datasets_dir = settings.datasets_dir / text
    if under_datasets_dir.is_dir():
        return load_directory(under_datasets_dir)
    raise UserFacingError(
        f"dataset {text!r} not found: not a known name ({', '.join(dataset_names())}), "
        f"nor a directory at {path.resolve()} or {under_datasets_dir.resolve()}"
    )


def bundled_directory(name: str) -> Path:
    """The directory of a dataset shipped inside the package."""
    location = resources.files("streamrec.bundled").joinpath(name)
    if not isinstance(location, Path) or not location.is_dir():
        raise UserFacingError(f"bundled dataset {name} is missing from the installed package")
    return location
