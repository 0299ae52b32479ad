"""Values that only the storage edge introduces; the rest come from streamrec.state/events.

>>> letter = DeadLetter(source_topic="interactions", payload=b"{", reason="invalid_json")
>>> letter.source_partition is None
True
>>> TrainingTrigger("drift").value
'drift'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class TrainingTrigger(StrEnum):
    SCHEDULE = "schedule"
    OPERATOR = "operator"
    DRIFT = "drift"


class ProcessedEvent(NamedTuple):
    """An interaction event id as first stored: the fingerprint of its content
    (``streamrec.services.event_ids.event_fingerprint``), the (user, item) it named, and when
    it was received (seconds since the epoch)."""

    event_id: str
    fingerprint: str
    user_id: str
    item_id: str
    received_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that was rejected: its bytes, where they came from, and why.

    ``reason`` is a short code (counted and indexed); ``detail`` is the one-line explanation.
    ``received_at`` unset means "now" when stored. ``payload`` may be a bounded copy, the
    first bytes of the original (``streamrec.services.dead_letters``): then
    ``payload_size`` and ``payload_sha256`` describe the whole original. They are not
    stored in the table (its ``detail`` says when a copy was cut), so a letter read back has
    them unset, and its payload describes itself.
    """

    source_topic: str
    payload: bytes
    reason: str
    detail: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    key: bytes | None = None
    received_at: float | None = None
    id: int | None = None
    payload_size: int | None = None
    payload_sha256: str | None = None

    @property
    def original_size(self) -> int:
        """Bytes of the original payload, of which ``payload`` holds the first."""
        return len(self.payload) if self.payload_size is None else self.payload_size

    @property
    def original_sha256(self) -> str:
        """Hex SHA-256 of the original payload."""
        if self.payload_sha256 is not None:
            return self.payload_sha256
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def truncated(self) -> bool:
        """True when ``payload`` holds less than the original payload."""
        return self.original_size > len(self.payload)


@dataclass(frozen=True, slots=True)
class TrainingRun:
    """One trainer run. ``outcome`` is None while it runs."""

    id: int
    trigger: TrainingTrigger
    started_at: float
    finished_at: float | None = None
    outcome: str | None = None
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    candidate_version: int | None = None
    parent_version: int | None = None
