"""JSON bytes to one object, strictly, then to a declared message; messages back to bytes.

msgspec decodes, but keeps the last of repeated keys: so the object is re-encoded and its
colons, one per member outside strings, counted against the payload's. On any doubt the
standard library's decoder, hooked to refuse repeated keys and non-finite numbers, judges.

>>> decode_object(b'{"a": 1, "a": 2}', max_bytes=1024)
Traceback (most recent call last):
...
streamrec.validation.rejection.InvalidEvent: duplicate_key: 'a': key appears more than once
"""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any, TypeVar

import msgspec

from streamrec.validation.rejection import InvalidEvent
from streamrec.validation.rejection import RejectionReason as Reason

Message = TypeVar("Message")
# Python's and msgspec's type names, as details name JSON types.
_NAMES = {"bool": "boolean", "int": "number", "float": "number", "str": "string", "list": "array"}
_NAMES |= {"dict": "object", "NoneType": "null"}
_EXPECTED = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}
_EXPECTED |= {"object": "an object", "int | str": "a string or an integer"}
_EXPECTED["float | str"] = "epoch seconds or an ISO-8601 string with a timezone"
# C0 and C1 controls (NUL breaks PostgreSQL text, newlines break logs) and lone surrogates,
# which a JSON \ud800 escape gives but UTF-8 cannot store.
FORBIDDEN_CHARACTERS = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
UNCLEAN = "contains a control character or an unpaired surrogate"
# msgspec's validation messages: each one's reason, and the detail after "<field>: ".
_PROBLEMS = [
    (r"Object missing required field `(?P<field>.+)`", Reason.MISSING_FIELD, "is required"),
    (r"Expected `.+`, got `null`", Reason.MISSING_FIELD, "is required"),  # null means absent
    (r"Expected `(?P<type>.+?)(?: \| null)?`, got `(?P<got>.+)`", Reason.WRONG_TYPE, ""),
    (r"Expected `str` of length >= 1", Reason.INVALID_TEXT, "must not be empty"),
    (r"Expected `str` matching regex .*", Reason.INVALID_TEXT, UNCLEAN),
    (r"Expected `.+` of length <= (?P<limit>\d+)", Reason.TOO_LONG, "is over the limit, {limit}"),
    (r"Expected `.+` >= (?P<limit>\S+)", Reason.OUT_OF_RANGE, "must be at least {limit}"),
    (r"Expected `.+` <= (?P<limit>\S+)", Reason.OUT_OF_RANGE, "must be at most {limit}"),
    (r"Invalid (?:enum )?value (?P<value>.+)", Reason.OUT_OF_RANGE, "{value} is not allowed"),
    (r"(?:Number|Integer value) out of range", Reason.OUT_OF_RANGE, "is too large"),
    (r"(?P<problem>.*)", Reason.WRONG_TYPE, "{problem}"),
]
_PROBLEMS = [(re.compile(pattern), reason, text) for pattern, reason, text in _PROBLEMS]
_DECODER, _COUNTER = msgspec.json.Decoder(), msgspec.json.Encoder()
# Callers may hand over numpy scalars (scores, memberships); JSON knows plain numbers.
_ENCODER = msgspec.json.Encoder(
    enc_hook=lambda value: int(value) if isinstance(value, numbers.Integral) else float(value)
)


def shown(text: str) -> str:
    """``text`` quoted, escaped and cut at 40 characters: safe inside a one-line detail."""
    return repr(text[:40]) + "..." if len(text) > 40 else repr(text)


def type_name(value: object) -> str:
    return _NAMES.get(type(value).__name__, type(value).__name__)


def decode_object(payload: bytes | bytearray | memoryview | None, max_bytes: int) -> dict:
    """The JSON object in ``payload``; raises InvalidEvent for anything else."""
    if not payload:
        detail = "no value (a tombstone?)" if payload is None else "is empty"
        raise InvalidEvent(Reason.EMPTY_PAYLOAD, f"payload: {detail}")
    if not isinstance(payload, bytes):
        if not isinstance(payload, bytearray | memoryview):
            detail = f"payload: must be bytes, got {type_name(payload)}"
            raise InvalidEvent(Reason.WRONG_TYPE, detail)
        payload = bytes(payload)
    if len(payload) > max_bytes:
        detail = f"payload: {len(payload)} bytes, the limit is {max_bytes}"
        raise InvalidEvent(Reason.PAYLOAD_TOO_LARGE, detail)
    try:
        document = _DECODER.decode(payload)
        # An escaped colon (\u003a) in a string would hide a member from the count.
        doubtful = b"\\u003" in payload or payload.count(b":") != _COUNTER.encode(document).count(
            b":"
        )
    except (msgspec.MsgspecError, RecursionError):
        doubtful = True
    document = _strictly_decoded(payload) if doubtful else document
    if not isinstance(document, dict):
        detail = f"payload: must be a JSON object, got {type_name(document)}"
        raise InvalidEvent(Reason.NOT_AN_OBJECT, detail)
    return document


def _strictly_decoded(payload: bytes | bytearray | memoryview) -> Any:
    try:
        text = str(payload, "utf-8")
    except UnicodeDecodeError as error:
        detail = f"payload: invalid UTF-8 at byte {error.start}"
        raise InvalidEvent(Reason.INVALID_UTF8, detail) from None
    try:
        return _STRICT_DECODER.decode(text)
    except RecursionError:
        detail = "payload: arrays or objects nested too deeply"
        raise InvalidEvent(Reason.TOO_DEEPLY_NESTED, detail) from None
    except json.JSONDecodeError as error:
        detail = f"payload: {error.msg} at line {error.lineno} column {error.colno}"
        raise InvalidEvent(Reason.INVALID_JSON, detail) from None
    except ValueError:  # an integer literal longer than Python converts
        detail = "payload: a number literal has too many digits"
        raise InvalidEvent(Reason.OUT_OF_RANGE, detail) from None


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(document := dict(pairs)) < len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise InvalidEvent(Reason.DUPLICATE_KEY, f"{shown(repeated)}: key appears more than once")
    return document


def _finite(literal: str) -> float:
    if not math.isfinite(number := float(literal)):  # NaN and Infinity come here too
        detail = f"payload: {shown(literal)} is not a finite number"
        raise InvalidEvent(Reason.NOT_FINITE, detail)
    return number


_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_without_repeated_keys, parse_constant=_finite, parse_float=_finite
)


def converted(document: dict, message_type: type[Message]) -> Message:
    """``document`` as ``message_type``; its first problem as an InvalidEvent.

    >>> class Point(msgspec.Struct):
    ...     x: int
    >>> converted({"x": True}, Point)
    Traceback (most recent call last):
    ...
    streamrec.validation.rejection.InvalidEvent: wrong_type: x: must be an integer, got boolean
    """
    try:
        return msgspec.convert(document, message_type)
    except msgspec.ValidationError as error:
        problem, _, path = str(error).partition(" - at `$")
        reason, parts, text = next(
            (reason, found.groupdict(), text)
            for pattern, reason, text in _PROBLEMS
            if (found := pattern.fullmatch(problem))
        )
        if reason is Reason.WRONG_TYPE:
            expected = _EXPECTED.get(parts["type"], parts["type"])
            got = _NAMES.get(parts["got"], parts["got"])
            text = f"must be {expected}, got {got}"
        where = ".".join(filter(None, [path.strip(".`"), parts.get("field")])) or "payload"
        raise InvalidEvent(reason, f"{where}: {text.format(**parts)}") from None


def encode_message(message: object) -> bytes:
    """Compact UTF-8 JSON. Raises ValueError for NaN, Infinity or text that is not UTF-8."""
    encoded = _ENCODER.encode(message)
    if b"null" in encoded:  # msgspec writes NaN and Infinity as null: the strict encoder judges
        json.dumps(msgspec.to_builtins(message, enc_hook=_ENCODER.enc_hook), allow_nan=False)
    return encoded
