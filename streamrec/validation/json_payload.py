"""The JSON layer of the wire format: bytes to one JSON object and back, strictly.

Strict means: UTF-8 only (no BOM, no UTF-16 guessing), no duplicate keys, no NaN or Infinity
literals, no number too large for a float (1e999), and a size limit checked before anything is
decoded. Every failure is an InvalidEvent with a precise reason; nothing else escapes.

>>> decode_object(b'{"a": 1}', max_bytes=1024)
{'a': 1}
>>> decode_object(b'{"a": 1, "a": 2}', max_bytes=1024)
Traceback (most recent call last):
...
streamrec.validation.rejection.InvalidEvent: duplicate_key: 'a': key appears more than once
>>> encode_object({"b": "é", "a": 1.5})
b'{"b":"\\xc3\\xa9","a":1.5}'
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

import orjson

from streamrec.validation.rejection import InvalidEvent, RejectionReason

# Enough for a readable hint, short enough that a detail stays one short line.
_SHOWN_CHARACTERS = 40


def shown(text: str) -> str:
    """``text`` quoted, escaped and truncated, safe to embed in a one-line detail."""
    if len(text) > _SHOWN_CHARACTERS:
        return repr(text[:_SHOWN_CHARACTERS]) + "..."
    return repr(text)


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for "got ..." in details."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidEvent(
                    RejectionReason.DUPLICATE_KEY, f"{shown(key)}: key appears more than once"
                )
            seen.add(key)
    return document


def _refuse_non_finite_literal(literal: str) -> Any:
    raise InvalidEvent(
        RejectionReason.NOT_FINITE,
        f"payload: {literal} is not valid JSON; numbers must be finite",
    )


def _finite_float(literal: str) -> float:
    number = float(literal)
    if math.isinf(number):
        raise InvalidEvent(
            RejectionReason.NOT_FINITE, f"payload: {shown(literal)} is too large for a float"
        )
    return number


# Stateless and reused: building a decoder per message costs more than the decoding itself.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicate_keys,
    parse_constant=_refuse_non_finite_literal,
    parse_float=_finite_float,
)


def decode_object(payload: bytes | bytearray | memoryview | None, max_bytes: int) -> dict[str, Any]:
    """The JSON object in ``payload``; raises InvalidEvent for anything else."""
    if payload is None:
        raise InvalidEvent(RejectionReason.EMPTY_PAYLOAD, "payload: no value (a tombstone?)")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidEvent(
            RejectionReason.WRONG_TYPE, f"payload: must be bytes, got {type(payload).__name__}"
        )
    size = len(payload)
    if size == 0:
        raise InvalidEvent(RejectionReason.EMPTY_PAYLOAD, "payload: is empty")
    if size > max_bytes:
        raise InvalidEvent(
            RejectionReason.PAYLOAD_TOO_LARGE, f"payload: {size} bytes, the limit is {max_bytes}"
        )
    try:
        text = str(payload, "utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent(
            RejectionReason.INVALID_UTF8, f"payload: invalid UTF-8 at byte {error.start}"
        ) from None
    try:
        document = _DECODER.decode(text)
    except RecursionError:
        raise InvalidEvent(
            RejectionReason.TOO_DEEPLY_NESTED, "payload: arrays or objects nested too deeply"
        ) from None
    except json.JSONDecodeError as error:
        raise InvalidEvent(
            RejectionReason.INVALID_JSON,
            f"payload: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except ValueError:
        # The only other ValueError of the decoder: an integer literal longer than Python
        # converts (sys.get_int_max_str_digits).
        raise InvalidEvent(
            RejectionReason.OUT_OF_RANGE, "payload: a number literal has too many digits"
        ) from None
    if not isinstance(document, dict):
        raise InvalidEvent(
            RejectionReason.NOT_AN_OBJECT,
            f"payload: must be a JSON object, got {json_type_name(document)}",
        )
    return document


def _plain_number(value: object) -> int | float:
    # Callers may hand us numpy scalars (scores, memberships); JSON knows only plain numbers.
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_object(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Raises ValueError for NaN, Infinity or text that is not UTF-8.

    orjson writes it: a consumer encodes one message per touched user, and the standard
    library's encoder was several times slower (docs/performance.md). orjson writes NaN and
    Infinity as null and refuses what it cannot write (integers beyond 64 bits, lone
    surrogates, keys that are not strings); any output with a null, and any refusal, goes
    through the standard library's strict encoder instead, which decides as before.

    >>> encode_object({"score": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: Out of range float values are not JSON compliant...
    >>> encode_object({"big": 10**20, "source": None})
    b'{"big":100000000000000000000,"source":null}'
    """
    try:
        encoded = orjson.dumps(document, default=_plain_number)
    except orjson.JSONEncodeError:
        return _strict_encode(document)
    if b"null" in encoded:
        return _strict_encode(document)
    return encoded


def _strict_encode(document: dict[str, Any]) -> bytes:
    text = json.dumps(
        document,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
        default=_plain_number,
    )
    return text.encode("utf-8")
