"""Decode and validate one input event, three ways, on the same valid and invalid payloads:

- the hand-written parser that streamrec.validation was, read from git at ``--handwritten``;
- msgspec Structs: ``streamrec.validation`` as it is;
- pydantic v2 models of the same messages, below.

All three share what their libraries cannot do (refusing repeated keys: the package's strict
decoding; an id's length from the settings, clean text, ISO timestamps: the package's field
rules), so the columns differ by how each declares and checks a message. Each payload must
get the same verdict from all three; the table says where one did not.

    python -m streamrec.benchmarks.wire_formats [--handwritten COMMIT] [--calls 3000]

>>> pydantic_interaction(PAYLOADS["rating"], EventSettings()).user_id
'1'
>>> pydantic_interaction(PAYLOADS["value true"], EventSettings()).reason
<RejectionReason.WRONG_TYPE: 'wrong_type'>
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import msgspec
import pydantic

from streamrec.config import EventSettings
from streamrec.events import InteractionEvent
from streamrec.validation import Rejection, RejectionReason, parse_interaction
from streamrec.validation.decoding import InvalidEvent, read_document
from streamrec.validation.input_events import read_id, read_text, read_timestamp
from streamrec.wire.events import ITEM_FIELDS, MAX_LABEL_LENGTH

# The last commit whose streamrec/validation was hand-written: the baseline to beat.
HANDWRITTEN_COMMIT = "a61e98a"
Parser = Callable[[bytes, EventSettings], object]
_ATTRIBUTES = b',"user_attributes":{"age":"25-34","gender":"F","occupation":12,"country":"FR"}'
_RATING = (
    b'{"schema_version":1,"event_id":"ml-latest-small:1:1","user_id":"1","item_id":"1",'
    b'"type":"rating","value":4.0,"timestamp":964982703}'
)
PAYLOADS = {
    "rating": _RATING,
    "click, ISO time, 4 attributes": _RATING.replace(b'"rating","value":4.0', b'"click"')
    .replace(b"964982703", b'"2024-05-01T12:00:00+02:00"')
    .replace(b"}", _ATTRIBUTES + b"}"),
    "not JSON": b'{"schema_version": 1,',
    "repeated key": _RATING.replace(b'"user_id":"1"', b'"user_id":"1","user_id":"2"'),
    "value true": _RATING.replace(b"4.0", b"true"),
    "no user_id": _RATING.replace(b'"user_id":"1",', b""),
    "unknown type": _RATING.replace(b'"rating"', b'"Rating"'),
    "milliseconds": _RATING.replace(b"964982703", b"964982703000"),
}


class InteractionModel(pydantic.BaseModel, strict=True, extra="ignore", frozen=True):
    """The interaction message as a pydantic model (docs/events.md, "Interaction events")."""

    schema_version: int
    event_id: str | int
    user_id: str | int
    item_id: str | int
    type: str
    timestamp: float | str
    value: Annotated[float, pydantic.Field(allow_inf_nan=False)] | None = None
    user_attributes: Annotated[dict[str, Any], pydantic.Field(max_length=32)] | None = None


_PYDANTIC_REASONS = {"missing": RejectionReason.MISSING_FIELD, "too_long": RejectionReason.TOO_LONG}


def pydantic_interaction(payload: bytes, settings: EventSettings) -> InteractionEvent | Rejection:
    """parse_interaction with a pydantic model in place of the msgspec Struct."""
    try:
        document = read_document(payload, settings.max_event_bytes)
        if field := next((name for name in ITEM_FIELDS if name in document), None):
            raise InvalidEvent(RejectionReason.WRONG_TOPIC, f"{field}: is a field of items")
        try:
            message = InteractionModel.model_validate(document)
        except pydantic.ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = str(first["loc"][0])
            missing = first["type"] == "missing" or first["input"] is None
            reason = _PYDANTIC_REASONS.get(first["type"], RejectionReason.WRONG_TYPE)
            reason = RejectionReason.MISSING_FIELD if missing else reason
            raise InvalidEvent(reason, f"{where}: {first['msg']}") from None
        ids = [
            read_id(getattr(message, name), name, settings.max_id_length)
            for name in ("event_id", "user_id", "item_id")
        ]
        if message.type != "rating" and message.type not in settings.implicit_weights:
            raise InvalidEvent(RejectionReason.UNKNOWN_EVENT_TYPE, "type: unknown")
        if message.type == "rating" and message.value is None:
            raise InvalidEvent(RejectionReason.MISSING_FIELD, "value: a rating needs a value")
        low, high = (settings.rating_min, settings.rating_max)
        if message.type != "rating":
            low, high = -1.0, 1.0
        if message.value is not None and not low <= message.value <= high:
            raise InvalidEvent(RejectionReason.OUT_OF_RANGE, "value: out of range")
        attributes = {
            read_text(name, "user_attributes", 64, RejectionReason.INVALID_TEXT): read_text(
                value, f"user_attributes[{name!r}]", MAX_LABEL_LENGTH, RejectionReason.INVALID_TEXT
            )
            for name, value in (message.user_attributes or {}).items()
            if value is not None
        }
        event = InteractionEvent(
            *ids, message.type, read_timestamp(message.timestamp), message.value, attributes
        )
    except InvalidEvent as error:
        return error.rejection
    return event


def handwritten_parser(commit: str) -> Parser | None:
    """parse_interaction as it was at ``commit``, imported from a copy of its package; None
    where git or that commit is not at hand."""
    modules = ["rejection", "json_payload", "fields", "routing", "interactions"]
    package = Path(tempfile.mkdtemp(prefix="handwritten-")) / "handwritten_validation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in modules:
        path = f"{commit}:streamrec/validation/{module}.py"
        shown = subprocess.run(["git", "show", path], capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            return None
        source = shown.stdout.replace("streamrec.validation", "handwritten_validation")
        (package / f"{module}.py").write_text(source)
    sys.path.insert(0, str(package.parent))
    return importlib.import_module("handwritten_validation.interactions").parse_interaction


def verdict(result: object) -> str:
    """The rejection's reason, or "event" (the hand-written parser has Rejections of its own)."""
    return str(getattr(result, "reason", "event"))


def microseconds_per_call(
    parsers: dict[str, Parser], payload: bytes, settings: EventSettings, calls: int
) -> dict[str, float]:
    """Each parser's best of 5 timings, taken in turns so that a busy moment hits them all."""
    best = dict.fromkeys(parsers, float("inf"))
    for _ in range(5):
        for name, parse in parsers.items():
            seconds = timeit.timeit(lambda parse=parse: parse(payload, settings), number=calls)
            best[name] = min(best[name], seconds / calls * 1e6)
    return best


@click.command()
@click.option("--handwritten", default=HANDWRITTEN_COMMIT, show_default=True, help="Its commit.")
@click.option("--calls", default=3000, show_default=True, help="Calls per timing, best of 5.")
def main(handwritten: str, calls: int) -> None:
    """Print microseconds per event of each parser on each payload, as a markdown table."""
    settings = EventSettings()
    parsers: dict[str, Parser] = {"msgspec (streamrec.validation)": parse_interaction}
    parsers["pydantic v2"] = pydantic_interaction
    if (old := handwritten_parser(handwritten)) is not None:
        parsers = {f"hand-written ({handwritten})": old, **parsers}
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line for line in lines if line.startswith("model name")]
    processor = models[0].split(":", 1)[1].strip() if models else platform.machine()
    print(
        f"{processor}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"msgspec {msgspec.__version__}, pydantic {pydantic.VERSION}"
    )
    print("\n| payload | verdict | " + " | ".join(f"{name} (us)" for name in parsers) + " |")
    print("|---|---|" + "---:|" * len(parsers))
    totals = dict.fromkeys(parsers, 0.0)
    for label, payload in PAYLOADS.items():
        verdicts = {verdict(parse(payload, settings)) for parse in parsers.values()}
        timings = microseconds_per_call(parsers, payload, settings, calls)
        totals = {name: totals[name] + timings[name] / len(PAYLOADS) for name in parsers}
        cells = " | ".join(f"{timings[name]:.2f}" for name in parsers)
        print(f"| {label} | {' / '.join(sorted(verdicts))} | {cells} |")
    print("| mean | | " + " | ".join(f"**{totals[name]:.2f}**" for name in parsers) + " |")


if __name__ == "__main__":
    main()
