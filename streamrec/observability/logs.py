"""Structured logging for every process: JSON lines for log pipelines, or text for people.

``configure_logging(settings.observability)`` sets the root logger once per process. Every
record passes through a filter that masks secrets (URL passwords, ``password=...`` pairs), so
that a driver error quoting a connection string never leaks one.

>>> mask_secrets("cannot reach postgresql+psycopg://app:hunter2@db/recs")
'cannot reach postgresql+psycopg://app:***@db/recs'
>>> mask_secrets("sasl_plain_password='s3cret' retries=3")
"sasl_plain_password='***' retries=3"
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from streamrec.config import ObservabilitySettings

# user:password@ in any URL.
_URL_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)")
# password=..., password: ..., "password": "..." and the like (any key ending in password,
# secret or token).
_KEYED_SECRET = re.compile(
    r"(?P<prefix>(?:password|passwd|secret|token)['\"]?\s*[=:]\s*['\"]?)(?P<secret>[^'\"\s,;}]+)",
    re.IGNORECASE,
)
MASK = "***"
# The attributes every LogRecord has; anything else was passed with extra= and is logged.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_secrets(text: str) -> str:
    text = _URL_PASSWORD.sub(lambda match: match["prefix"] + MASK, text)
    return _KEYED_SECRET.sub(lambda match: match["prefix"] + MASK, text)


class SecretMaskingFilter(logging.Filter):
    """Renders each record's message once, masked, so no handler sees the secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


class ClosedSocketReadFilter(logging.Filter):
    """Drops kafka-python's traceback for a read on a socket its own ``close`` just released.

    kafka-python 3.0 reads on a network thread. When another thread closes the client, the
    reader can wake after the transport set its socket to None; the library then logs
    ``AttributeError: 'NoneType' object has no attribute 'recv'`` with a traceback, and
    ends the read loop because the transport is closed. Nothing is lost, so the traceback
    is noise that would read like a crash at every shutdown. Any other record passes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kafka.net") or not record.exc_info:
            return True
        error = record.exc_info[1]
        return not (isinstance(error, AttributeError) and "'NoneType'" in str(error))


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the fields
    passed with ``extra=``, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                document[name] = value
        if record.exc_info:
            document["exception"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(settings: ObservabilitySettings, stream: TextIO | None = None) -> None:
    """Send every logger's records to ``stream`` (stderr by default) in the configured format
    and level, replacing handlers an earlier call installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretMaskingFilter())
    handler.addFilter(ClosedSocketReadFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # kafka-python is chatty at INFO (every connection, every rebalance step).
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
