"""Bytes to a declared message: one JSON object, strictly, then msgspec's conversion, whose
first problem becomes the reason and detail of an InvalidEvent. msgspec decodes, but keeps
the last of repeated keys: so the object is re-encoded and its colons, one per member outside
strings, counted against the payload's. On any doubt the standard library judges."""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

import msgspec

from streamrec.events import SCHEMA_VERSION, Rejection
from streamrec.events import RejectionReason as Reason
from streamrec.wire import UNCLEAN

Message = TypeVar("Message")
# JSON's names for Python's and msgspec's types, and what a declared type asks for.
_NAMES = dict(bool="boolean", int="number", float="number", str="string", list="array")
_NAMES |= dict(dict="object", NoneType="null")
_EXPECTED = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}
_EXPECTED |= {"object": "an object", "array": "an array", "int | str": "a string or an integer"}
_EXPECTED["float | str"] = "epoch seconds or an ISO-8601 string with a timezone"
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
# Where: "... - at `$.a[...]`", or "... - at `key` in `$.a`" for a dict's key.
_WHERE = re.compile(r"(?P<problem>.*?)(?: - at (?P<key>`key` in )?`\$\.?(?P<path>[^`]*)`)?")
_DECODER, _COUNTER = msgspec.json.Decoder(), msgspec.json.Encoder()
_Versioned = msgspec.defstruct("Versioned", [("schema_version", int)])


class InvalidEvent(Exception):
    """Carries a Rejection out of validation; not a ValueError, which decoders raise."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.rejection = Rejection(reason, detail)


def read_document(payload: object, max_bytes: int) -> dict:
    """The JSON object in ``payload``; its schema version first: another has other fields."""
    version = (document := decode_object(payload, max_bytes)).get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        version = converted(document, _Versioned).schema_version  # a missing or wrong type
        detail = f"{str(version)[:24]} is not supported (supported: {SCHEMA_VERSION})"
        raise InvalidEvent(Reason.UNSUPPORTED_SCHEMA_VERSION, f"schema_version: {detail}")
    return document


def decode_object(payload: object, max_bytes: int) -> dict:
    """The JSON object in ``payload``; raises InvalidEvent for anything else."""
    if not payload:
        detail = "no value (a tombstone?)" if payload is None else "is empty"
        raise InvalidEvent(Reason.EMPTY_PAYLOAD, f"payload: {detail}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidEvent(Reason.WRONG_TYPE, f"payload: must be bytes, got {type_name(payload)}")
    if len(payload := bytes(payload)) > max_bytes:
        detail = f"payload: {len(payload)} bytes, the limit is {max_bytes}"
        raise InvalidEvent(Reason.PAYLOAD_TOO_LARGE, detail)
    try:
        document = _DECODER.decode(payload)
        # An escaped colon (\u003a) in a string would hide a member from the count.
        colons = _COUNTER.encode(document).count(b":")
        doubtful = b"\\u003" in payload or payload.count(b":") != colons
    except (msgspec.MsgspecError, RecursionError):
        doubtful = True
    if not isinstance(document := strictly_decoded(payload) if doubtful else document, dict):
        detail = f"payload: must be a JSON object, got {type_name(document)}"
        raise InvalidEvent(Reason.NOT_AN_OBJECT, detail)
    return document


def strictly_decoded(payload: bytes) -> Any:
    """The standard library's verdict on ``payload``, with a reason for every refusal."""
    try:
        return _STRICT_DECODER.decode(str(payload, "utf-8"))
    except UnicodeDecodeError as error:
        reason, detail = Reason.INVALID_UTF8, f"invalid UTF-8 at byte {error.start}"
    except RecursionError:
        reason, detail = Reason.TOO_DEEPLY_NESTED, "arrays or objects nested too deeply"
    except json.JSONDecodeError as error:
        reason = Reason.INVALID_JSON
        detail = f"{error.msg} at line {error.lineno} column {error.colno}"
    except ValueError:  # an integer literal longer than Python converts
        reason, detail = Reason.OUT_OF_RANGE, "a number literal has too many digits"
    raise InvalidEvent(reason, f"payload: {detail}")


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(document := dict(pairs)) < len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise InvalidEvent(Reason.DUPLICATE_KEY, f"{shown(repeated)}: key appears more than once")
    return document


def _finite(literal: str) -> float:
    if not math.isfinite(number := float(literal)):  # NaN and Infinity come here too
        raise InvalidEvent(Reason.NOT_FINITE, f"payload: {shown(literal)} is not a finite number")
    return number


_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_without_repeated_keys, parse_constant=_finite, parse_float=_finite
)


def converted(document: dict, message_type: type[Message]) -> Message:
    """``document`` as ``message_type``; its first problem as an InvalidEvent."""
    try:
        return msgspec.convert(document, message_type)
    except msgspec.ValidationError as error:
        found = _WHERE.fullmatch(str(error))
        reason, parts, text = next(
            (reason, matched.groupdict(), text)
            for pattern, reason, text in _PROBLEMS
            if (matched := pattern.fullmatch(found["problem"]))
        )
        if reason is Reason.WRONG_TYPE and "got" in parts:
            expected = _EXPECTED.get(parts["type"], parts["type"])
            text = f"must be {expected}, got {_NAMES.get(parts['got'], parts['got'])}"
        where = ".".join(filter(None, [found["path"], parts.get("field")])) or "payload"
        where += " key" if found["key"] else ""
        raise InvalidEvent(reason, f"{where}: {text.format(**parts)}") from None


def shown(text: str) -> str:
    """``text`` quoted, escaped and cut at 40 characters: safe inside a one-line detail."""
    return repr(text[:40]) + "..." if len(text) > 40 else repr(text)


def type_name(value: object) -> str:
    return _NAMES.get(type(value).__name__, type(value).__name__)
