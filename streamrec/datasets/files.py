"""Reading dataset files the way they are distributed: plain or gzipped, with a precise reason
for every line that cannot be read.

>>> import gzip, tempfile
>>> from pathlib import Path
>>> directory = Path(tempfile.mkdtemp())
>>> with gzip.open(directory / "ratings.dat.gz", "wt") as stream:
...     _ = stream.write("1::10::5::0\\n")
>>> path = find_data_file(directory, "ratings*.dat")
>>> path.name, list(read_lines(path))
('ratings.dat.gz', [(1, '1::10::5::0')])
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from streamrec.errors import UserFacingError

# What reading a damaged, truncated or wrongly encoded (possibly gzipped) file raises.
READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)


class DatasetFormatError(UserFacingError):
    """A dataset file is missing or does not have the expected format; the message names the
    file and, when it is about content, the line."""


def open_text(path: Path, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for reading text, decompressing it when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, newline="")
    return path.open("r", encoding=encoding, newline="")


def find_data_file(directory: Path, pattern: str) -> Path:
    """The file in ``directory`` matching the glob ``pattern``, plain or with ``.gz`` appended.

    Raises DatasetFormatError naming the directory and the pattern when there is none.
    """
    found = find_optional_data_file(directory, pattern)
    if found is None:
        raise DatasetFormatError(f"{directory}: no file matching {pattern} or {pattern}.gz")
    return found


def find_optional_data_file(directory: Path, pattern: str) -> Path | None:
    """Like find_data_file, but None when absent; a plain file wins over a gzipped one."""
    for candidate_pattern in (pattern, f"{pattern}.gz"):
        matches = sorted(path for path in directory.glob(candidate_pattern) if path.is_file())
        if matches:
            return matches[0]
    return None


def read_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its end of line) for every non-blank line."""
    try:
        with open_text(path, encoding) as stream:
            for number, line in enumerate(stream, start=1):
                stripped = line.rstrip("\r\n")
                if stripped.strip():
                    yield number, stripped
    except READ_ERRORS as error:
        raise DatasetFormatError(f"{path}: cannot be read ({error})") from None


def parse_number(text: str, path: Path, line_number: int, column: str) -> float:
    """``text`` as a finite float, or a DatasetFormatError naming file, line and column."""
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(
            f"{path}:{line_number}: {column} {text!r} is not a number"
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DatasetFormatError(f"{path}:{line_number}: {column} {text!r} is not finite")
    return value
