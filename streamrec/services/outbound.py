"""What a stored batch sends: messages as data, built by the service, sent by the loop.

A batch's outputs leave the service as ``OutboundMessage`` values: a topic, a key, a value
and headers, already encoded. The consumer loop (``consumers.batch_loop``) sends them in
order after the batch's commit and knows nothing of what they mean. One thing a message may
carry besides: a ``Fallback``, sent in its place if the broker refuses it for a reason
retrying cannot fix. Such a message never fails its batch: a dead letter (a bounded copy of
a rejected record) falls back to its headers alone, and if even those are refused it is
only reported, since the ``dead_letters`` row stored with the batch keeps it.

>>> from streamrec.events import RecommendationMessage, RecommendedItem
>>> message = recommendation_message(
...     "recommendations", RecommendationMessage("u1", (RecommendedItem("i9", 0.5),), 3, (), 1.0))
>>> message.topic, message.key, message.fallback is None
('recommendations', b'u1', True)
>>> from streamrec.storage.records import DeadLetter
>>> letter = DeadLetter("interactions", b"{", "invalid_json", "payload: ...", 0, 41, b"u1", 5.0)
>>> copy = dead_letter_message("dead-letters", letter)
>>> copy.about, copy.key, copy.value
('dead letter of interactions[0]@41 (invalid_json)', b'u1', b'{')
>>> copy.fallback.name, copy.fallback.message.key, copy.fallback.message.value
('headers_only', None, b'')
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from streamrec.drift import DriftSignal
from streamrec.events import RecommendationMessage
from streamrec.services.dead_letters import dead_letter_headers
from streamrec.storage.records import DeadLetter, TrainingTrigger
from streamrec.wire.control import TrainCommand, encode_control
from streamrec.wire.recommendations import encode_recommendation

Headers = tuple[tuple[str, bytes], ...]

# What reaches the dead-letter topic in place of a copy the broker refused.
HEADERS_ONLY = "headers_only"
# The key of train commands on the control topic (docs/training.md).
TRAIN_COMMAND_KEY = b"train"


@dataclass(frozen=True, slots=True)
class Fallback:
    """What to send in place of a message the broker refuses for good.

    ``name`` says what reached the topic instead (a metric label); ``description`` names it
    in the log; ``if_refused`` says where the content stays when the fallback is refused
    too. A fallback is never replaced in turn.
    """

    message: OutboundMessage
    name: str
    description: str
    if_refused: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to publish after the batch's commit. ``about`` names it in the log."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()
    about: str = ""
    fallback: Fallback | None = None


def recommendation_message(topic: str, message: RecommendationMessage) -> OutboundMessage:
    """A user's list, keyed by user id (readers keep the latest per key)."""
    return OutboundMessage(topic, message.user_id.encode("utf-8"), encode_recommendation(message))


def dead_letter_message(topic: str, letter: DeadLetter) -> OutboundMessage:
    """The bounded copy of a rejected record, keyed by its original key, falling back to its
    headers alone (no key, an empty value) if the broker refuses the copy."""
    source = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
    headers_only = OutboundMessage(
        topic, None, b"", tuple(dead_letter_headers(letter, headers_only=True))
    )
    return OutboundMessage(
        topic,
        letter.key,
        letter.payload,
        tuple(dead_letter_headers(letter)),
        about=f"dead letter of {source} ({letter.reason})",
        fallback=Fallback(
            headers_only,
            name=HEADERS_ONLY,
            description="the headers only",
            if_refused="the dead_letters table keeps it",
        ),
    )


def drift_train_command(signal: DriftSignal, now: float) -> TrainCommand:
    """The control-topic request for an early run that a drift signal makes; its request id
    is new, so a retried publication repeats this command, not another."""
    return TrainCommand(uuid4().hex, TrainingTrigger.DRIFT, now, signal.describe())


def train_command_message(topic: str, command: TrainCommand) -> OutboundMessage:
    return OutboundMessage(
        topic,
        TRAIN_COMMAND_KEY,
        encode_control(command),
        about=f"train command {command.request_id} ({command.trigger.value})",
    )
