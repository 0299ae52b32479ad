"""Typed readers for the fields of a decoded message, and the contract's size limits.

Each reader takes a decoded JSON value and the field's name (``where``, used in the detail),
returns the value in its domain type, or raises InvalidEvent with the precise reason. The
rules are shared by every message so that an id, a timestamp or a name means the same thing
everywhere.

>>> read_id(42, "user_id", max_length=256)
'42'
>>> read_timestamp("2024-01-01T00:00:00Z", "timestamp")
1704067200.0
>>> read_number(True, "value")
Traceback (most recent call last):
...
streamrec.validation.rejection.InvalidEvent: wrong_type: value: must be a number, got boolean
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from streamrec.events import SCHEMA_VERSION
from streamrec.validation.json_payload import json_type_name, shown
from streamrec.validation.rejection import InvalidEvent, RejectionReason

EARLIEST_TIMESTAMP = 0  # 1970-01-01T00:00:00Z
LATEST_TIMESTAMP = 4_102_444_800  # 2100-01-01T00:00:00Z
MAX_NAME_LENGTH = 64  # attribute keys and feature names
MAX_LABEL_LENGTH = 256  # attribute values and categorical values
MAX_TITLE_LENGTH = 1024
MAX_TIMESTAMP_TEXT_LENGTH = 64
MAX_USER_ATTRIBUTES = 32
MAX_FEATURES = 64  # per categorical or numeric map
MAX_VALUES_PER_FEATURE = 256

# C0 and C1 controls (NUL breaks PostgreSQL text, newlines break logs) and lone surrogates,
# which a JSON \ud800 escape produces but UTF-8 cannot store.
_FORBIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def wrong_type(where: str, expected: str, value: object) -> InvalidEvent:
    return InvalidEvent(
        RejectionReason.WRONG_TYPE, f"{where}: must be {expected}, got {json_type_name(value)}"
    )


def check_schema_version(document: dict[str, Any]) -> None:
    """Checked before any other field: another version may have other fields."""
    version = required(document, "schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise wrong_type("schema_version", "an integer", version)
    if version != SCHEMA_VERSION:
        raise InvalidEvent(
            RejectionReason.UNSUPPORTED_SCHEMA_VERSION,
            f"schema_version: {_short_number(version)} is not supported "
            f"(supported: {SCHEMA_VERSION})",
        )


def required(document: dict[str, Any], field: str, where: str | None = None) -> Any:
    """The field's value; absent and null are both missing. ``where`` names the field in
    the detail when it is not at the top level."""
    value = document.get(field)
    if value is None:
        raise InvalidEvent(RejectionReason.MISSING_FIELD, f"{where or field}: is required")
    return value


def _checked_text(
    text: str,
    where: str,
    max_length: int,
    invalid: RejectionReason,
    too_long: RejectionReason,
) -> str:
    if not text:
        raise InvalidEvent(invalid, f"{where}: must not be empty")
    if len(text) > max_length:
        raise InvalidEvent(too_long, f"{where}: {len(text)} characters, the limit is {max_length}")
    if _FORBIDDEN_CHARACTERS.search(text):
        raise InvalidEvent(
            invalid, f"{where}: contains a control character or an unpaired surrogate"
        )
    return text


def read_id(value: Any, where: str, max_length: int) -> str:
    """A string or an integer (not a boolean), normalised to a non-empty string."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise wrong_type(where, "a string or an integer", value)
    return _checked_text(
        text, where, max_length, RejectionReason.INVALID_ID, RejectionReason.INVALID_ID
    )


def read_label(value: Any, where: str) -> str:
    """A short categorical value (occupation, genre): a string, or an integer code."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise wrong_type(where, "a string or an integer", value)
    return _checked_text(
        text, where, MAX_LABEL_LENGTH, RejectionReason.INVALID_TEXT, RejectionReason.TOO_LONG
    )


def read_text(value: Any, where: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise wrong_type(where, "a string", value)
    return _checked_text(
        value, where, max_length, RejectionReason.INVALID_TEXT, RejectionReason.TOO_LONG
    )


def read_name(key: str, where: str) -> str:
    """An object key that is data (an attribute or feature name); JSON keys are strings."""
    return _checked_text(
        key, where, MAX_NAME_LENGTH, RejectionReason.INVALID_TEXT, RejectionReason.TOO_LONG
    )


def read_number(value: Any, where: str) -> int | float:
    """A finite JSON number; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(where, "a number", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(RejectionReason.NOT_FINITE, f"{where}: must be finite")
    return value


def read_float(value: Any, where: str) -> float:
    """A finite number that fits a 64-bit float."""
    number = read_number(value, where)
    try:
        return float(number)
    except OverflowError:
        raise InvalidEvent(
            RejectionReason.OUT_OF_RANGE, f"{where}: too large for a float"
        ) from None


def read_float_between(value: Any, where: str, low: float, high: float) -> float:
    number = read_number(value, where)
    # Compared before float(): an integer too large for a float is just out of range.
    if not low <= number <= high:
        raise InvalidEvent(
            RejectionReason.OUT_OF_RANGE, f"{where}: {_short_number(number)} not in [{low}, {high}]"
        )
    return float(number)


def read_integer(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(where, "an integer", value)
    if value < minimum:
        raise InvalidEvent(RejectionReason.OUT_OF_RANGE, f"{where}: must be at least {minimum}")
    return value


def read_timestamp(value: Any, where: str) -> float:
    """Epoch seconds (a number) or an ISO-8601 string with a timezone, in 1970..2100."""
    if isinstance(value, str):
        seconds: int | float = _iso_seconds(value, where)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(where, "epoch seconds or an ISO-8601 string with a timezone", value)
    else:
        seconds = read_number(value, where)
    if not EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:
        looks_like_milliseconds = LATEST_TIMESTAMP < seconds <= LATEST_TIMESTAMP * 1000
        hint = " (milliseconds? send seconds)" if looks_like_milliseconds else ""
        raise InvalidEvent(
            RejectionReason.OUT_OF_RANGE,
            f"{where}: {_short_number(seconds)} is outside 1970..2100 in epoch seconds{hint}",
        )
    return float(seconds)


def _iso_seconds(text: str, where: str) -> float:
    moment = _aware_datetime(text)
    if moment is None:
        raise InvalidEvent(
            RejectionReason.INVALID_TIMESTAMP,
            f"{where}: {shown(text)} is not an ISO-8601 date-time with a timezone",
        )
    # Aware minus the aware epoch is a timedelta, which covers years 1..9999: no overflow.
    return moment.timestamp()


def _aware_datetime(text: str) -> datetime | None:
    if len(text) > MAX_TIMESTAMP_TEXT_LENGTH:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def read_object(value: Any, where: str, max_entries: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise wrong_type(where, "an object", value)
    if len(value) > max_entries:
        raise InvalidEvent(
            RejectionReason.TOO_LONG, f"{where}: {len(value)} entries, the limit is {max_entries}"
        )
    return value


def read_array(value: Any, where: str, max_items: int) -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(where, "an array", value)
    if len(value) > max_items:
        raise InvalidEvent(
            RejectionReason.TOO_LONG, f"{where}: {len(value)} items, the limit is {max_items}"
        )
    return value


def read_entries(value: Any, where: str, max_entries: int) -> Iterator[tuple[str, Any, str]]:
    """The entries of an optional data-keyed object (attributes, features) as
    (name, value, where); a null object or a null value means unknown and is skipped."""
    if value is None:
        return
    for key, entry in read_object(value, where, max_entries).items():
        entry_where = member(where, key)
        read_name(key, entry_where)
        if entry is not None:
            yield key, entry, entry_where


def member(where: str, key: str) -> str:
    """How a detail names an entry of a data-keyed object, e.g. ``user_attributes['age']``."""
    return f"{where}[{shown(key)}]"


def _short_number(number: int | float) -> str:
    # A 4000-digit integer must not become a 4000-character detail.
    text = repr(number)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"
