"""Field rules that a declared type cannot state, and the contract's fixed limits: an id's
length (a setting), clean text, a timestamp's two forms, the named entries of data-keyed
objects (attributes, features).

>>> read_id(42, "user_id", max_length=256), read_timestamp("2024-01-01T00:00Z", "timestamp")
('42', 1704067200.0)
>>> read_entries({"age": [25]}, "user_attributes", read_label)
Traceback (most recent call last):
...
streamrec.validation.rejection.InvalidEvent: wrong_type: user_attributes['age']: must be ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec

from streamrec.events import SCHEMA_VERSION
from streamrec.validation.codec import FORBIDDEN_CHARACTERS, UNCLEAN, converted, shown, type_name
from streamrec.validation.rejection import InvalidEvent
from streamrec.validation.rejection import RejectionReason as Reason

EARLIEST_TIMESTAMP, LATEST_TIMESTAMP = 0, 4_102_444_800  # 1970-01-01 and 2100-01-01, UTC
MAX_NAME_LENGTH = 64  # attribute and feature names
MAX_LABEL_LENGTH = 256  # attribute values and categorical values
MAX_TITLE_LENGTH = 1024
MAX_USER_ATTRIBUTES = 32
MAX_FEATURES = 64  # per categorical or numeric object
MAX_VALUES_PER_FEATURE = 256
Value = TypeVar("Value")
_FORBIDDEN = re.compile(f"[{FORBIDDEN_CHARACTERS}]")


def clean_text(max_length: int) -> Any:
    """A text field's declared type: 1 to ``max_length`` characters, none forbidden."""
    pattern = f"^[^{FORBIDDEN_CHARACTERS}]*$"
    return Annotated[str, msgspec.Meta(min_length=1, max_length=max_length, pattern=pattern)]


class _Versioned(msgspec.Struct):
    schema_version: int


def check_schema_version(document: dict) -> None:
    """Checked before any other field: another version may have other fields."""
    version = document.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        version = converted(document, _Versioned).schema_version  # a missing or wrong type
        detail = f"{str(version)[:24]} is not supported (supported: {SCHEMA_VERSION})"
        raise InvalidEvent(Reason.UNSUPPORTED_SCHEMA_VERSION, f"schema_version: {detail}")


def read_text(value: Any, where: str, max_length: int, reason: Reason = Reason.INVALID_TEXT) -> str:
    """Clean text of 1 to ``max_length`` characters; an integer (not a boolean) becomes its
    decimal string. An id (``reason`` invalid_id) is refused as invalid_id for any of these."""
    text = str(value) if type(value) is int else value
    if type(text) is str and 0 < len(text) <= max_length and not _FORBIDDEN.search(text):
        return text
    if type(text) is not str:
        detail = f"{where}: must be a string or an integer, got {type_name(value)}"
        raise InvalidEvent(Reason.WRONG_TYPE, detail)
    if not text:
        raise InvalidEvent(reason, f"{where}: must not be empty")
    if len(text) > max_length:
        too_long = Reason.TOO_LONG if reason is Reason.INVALID_TEXT else reason
        raise InvalidEvent(too_long, f"{where}: {len(text)} characters, the limit is {max_length}")
    raise InvalidEvent(reason, f"{where}: {UNCLEAN}")


def read_id(value: Any, where: str, max_length: int) -> str:
    return read_text(value, where, max_length, Reason.INVALID_ID)


def read_label(value: Any, where: str) -> str:
    return read_text(value, where, MAX_LABEL_LENGTH)


def read_number(value: Any, where: str) -> float:
    """A number (not a boolean) that fits a 64-bit float; decoding refused the non-finite."""
    if type(value) not in (int, float):
        raise InvalidEvent(Reason.WRONG_TYPE, f"{where}: must be a number, got {type_name(value)}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{where}: too large for a float") from None


def read_between(value: float, where: str, low: float, high: float) -> float:
    if not low <= value <= high:
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{where}: {value!r} not in [{low}, {high}]")
    return value


def read_timestamp(value: float | str, where: str) -> float:
    """Epoch seconds, or an ISO-8601 string with a timezone, in 1970..2100."""
    seconds = _iso_seconds(value, where) if isinstance(value, str) else value
    if not EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:
        hint = " (milliseconds? send seconds)" if seconds <= LATEST_TIMESTAMP * 1000 else ""
        detail = f"{seconds!r} is outside 1970..2100 in epoch seconds{hint}"
        raise InvalidEvent(Reason.OUT_OF_RANGE, f"{where}: {detail}")
    return seconds


def _iso_seconds(text: str, where: str) -> float:
    try:
        moment = datetime.fromisoformat(text) if len(text) <= 64 else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        detail = f"{shown(text)} is not an ISO-8601 date-time with a timezone"
        raise InvalidEvent(Reason.INVALID_TIMESTAMP, f"{where}: {detail}")
    return moment.timestamp()  # aware minus the aware epoch: no overflow in years 1..9999


def read_entries(
    entries: dict[str, Any] | None, where: str, read_value: Callable[[Any, str], Value]
) -> dict[str, Value]:
    """Each name clean text, each value read by ``read_value``; a null value means unknown
    and is left out."""
    read = {}
    for name, value in (entries or {}).items():
        read_text(name, member := f"{where}[{shown(name)}]", MAX_NAME_LENGTH)
        if value is not None:
            read[name] = read_value(value, member)
    return read
