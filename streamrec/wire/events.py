"""The input topics' messages (docs/events.md), as msgspec Structs with their limits:
interaction events (topic ``interactions``, keyed by user id) and item events (topic
``items``, keyed by item id). ``streamrec.validation`` reads them and applies the rules a
declared type cannot state."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from streamrec.wire import clean_text

EARLIEST_TIMESTAMP, LATEST_TIMESTAMP = 0, 4_102_444_800  # 1970-01-01 and 2100-01-01, UTC
MAX_LABEL_LENGTH = 256  # attribute values and categorical values
MAX_TITLE_LENGTH = 1024
MAX_USER_ATTRIBUTES = 32
MAX_FEATURES = 64  # per categorical or numeric object
MAX_VALUES_PER_FEATURE = 256
# Reserved to their event type, so that every other unknown field can still be ignored.
INTERACTION_FIELDS = ("event_id", "user_id", "type", "value", "user_attributes")
ITEM_FIELDS = ("title", "categorical", "numeric")
Name = clean_text(64)  # attribute and feature names
# Ids and labels are text or an integer (its decimal string); their length is checked on the
# text, and an id's limit is a setting.
Text = str | int
Values = Annotated[list[Text], Meta(max_length=MAX_VALUES_PER_FEATURE)]
Attributes = Annotated[dict[Name, Text | None], Meta(max_length=MAX_USER_ATTRIBUTES)]


class InteractionMessage(Struct):
    """docs/events.md, "Interaction events"."""

    event_id: Text
    user_id: Text
    item_id: Text
    type: str
    timestamp: float | str  # epoch seconds or ISO-8601 with a timezone
    value: float | None = None
    user_attributes: Attributes | None = None


class ItemMessage(Struct):
    """docs/events.md, "Item events"."""

    item_id: Text
    timestamp: float | str
    title: clean_text(MAX_TITLE_LENGTH) | None = None
    categorical: Annotated[dict[Name, Values | None], Meta(max_length=MAX_FEATURES)] | None = None
    numeric: Annotated[dict[Name, float | None], Meta(max_length=MAX_FEATURES)] | None = None
