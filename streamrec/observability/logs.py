"""Structured logging for every process: JSON lines for log pipelines, or text for people.

``configure_logging(settings.observability)`` sets the root logger once per process. Every
line is masked as a whole after it is formatted (``streamrec.redaction.mask_secrets``: URL
passwords, secret query parameters, ``password=...`` pairs), exception and extra fields
included, so that a driver error quoting a connection string never leaks one.
``mask_unconfigured_logging`` does the same for a process that configured no logging, whose
warnings Python prints through ``logging.lastResort``.

>>> formatter = SecretMaskingFormatter(logging.Formatter("%(name)s: %(message)s"))
>>> formatter.format(logging.makeLogRecord({
...     "name": "kafka.admin.client", "msg": "configuration: %s",
...     "args": ({"sasl_plain_password": "s3cret", "retries": 3},),
... }))
"kafka.admin.client: configuration: {'sasl_plain_password': '***', 'retries': 3}"
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from streamrec.config import ObservabilitySettings
from streamrec.redaction import mask_secrets

# The attributes every LogRecord has; anything else was passed with extra= and is logged.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class SecretMaskingFormatter(logging.Formatter):
    """Formats with ``inner``, then masks the whole line: message, exception and extra fields
    alike."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.inner.format(record))


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
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def configure_logging(settings: ObservabilitySettings, stream: TextIO | None = None) -> None:
    """Send every logger's records to ``stream`` (stderr by default) in the configured format
    and level, replacing handlers an earlier call installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(SecretMaskingFormatter(JsonLinesFormatter()))
    else:
        handler.setFormatter(SecretMaskingFormatter(logging.Formatter(TEXT_FORMAT)))
    handler.addFilter(ClosedSocketReadFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # kafka-python is chatty at INFO (every connection, every rebalance step).
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))


def mask_unconfigured_logging() -> None:
    """Mask the lines Python prints for a process that configured no logging handler
    (``logging.lastResort``: warnings and errors, message only)."""
    last_resort = logging.lastResort
    if last_resort is not None and not isinstance(last_resort.formatter, SecretMaskingFormatter):
        last_resort.setFormatter(SecretMaskingFormatter(logging.Formatter()))
