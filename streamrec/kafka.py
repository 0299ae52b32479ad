"""The Kafka edge: clients and topics built from Settings, on kafka-python.

This module is the only place that turns Settings into kafka-python clients, so every process
connects, authenticates and commits the same way. It knows nothing of which broker answers:
the address is ``settings.kafka.bootstrap_servers``, or else the local broker recorded in the
data directory by ``streamrec broker start``.

Messages stay raw bytes here: decoding is validation, and bad input must reach the dead-letter
topic with a reason instead of raising inside the client.

>>> from streamrec.config import Settings
>>> bootstrap_servers(Settings(kafka={"bootstrap_servers": "kafka-1:9092,kafka-2:9092"}))
'kafka-1:9092,kafka-2:9092'
>>> streamrec_topic_names(Settings())
['interactions', 'items', 'recommendations', 'dead-letters', 'control']
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.record import util as record_util
from kafka.structs import TopicPartition

from streamrec.broker import running_broker_address
from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.offsets import LogRange, StoredOffsets
from streamrec.redaction import mask_secrets

logger = logging.getLogger(__name__)

CLIENT_ID_PREFIX = "streamrec"
# The confirming fetch only wants the high watermark in the response, not the records.
LOG_END_FETCH_BYTES = 1024
# Kafka's own rule for topic names.
_LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


class KafkaUnavailableError(UserFacingError):
    """The configured Kafka bootstrap address does not answer."""


def bootstrap_servers(settings: Settings) -> str:
    """Where clients connect: the configured servers, else the running local broker.

    Raises UserFacingError when neither is available.
    """
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    address = running_broker_address(settings.data_dir)
    if address is None:
        raise UserFacingError(
            f"no Kafka broker: run `streamrec broker start` (data directory {settings.data_dir}) "
            "or set STREAMREC_KAFKA__BOOTSTRAP_SERVERS"
        )
    return address


def connection_options(settings: Settings, role: str) -> dict[str, Any]:
    """Options every client shares: address, identity and security.

    ``role`` names the client in broker logs (``client_id`` becomes ``streamrec-<role>``).
    """
    kafka = settings.kafka
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings).split(","),
        "client_id": f"{CLIENT_ID_PREFIX}-{role}",
        "security_protocol": kafka.security_protocol,
        # How long a client waits for the first metadata answer before the broker is down.
        "bootstrap_timeout_ms": settings.timeouts.kafka_bootstrap_ms,
    }
    if kafka.security_protocol.startswith("SASL"):
        missing = [
            f"kafka.{name}"
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(kafka, name) is None
        ]
        if missing:
            raise UserFacingError(
                f"kafka.security_protocol={kafka.security_protocol} needs {', '.join(missing)}"
            )
        assert kafka.sasl_password is not None  # checked above; narrows the type
        options |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password.get_secret_value(),
        }
    return options


# Bytes of one partition's record batch. A consumer publishes a whole batch's messages at
# once (a thousand lists of about 2 KB), then flushes: kafka-python's default of 16 KB closed
# a record batch, and woke the sender thread, every eight messages or so.
PRODUCER_BATCH_BYTES = 256 * 1024


def create_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A producer of raw bytes that waits for all in-sync replicas.

    Topics are never created implicitly, so a typo in a topic name fails instead of creating a
    topic with the broker's default partition count; call :func:`ensure_topics` first.
    """
    options = connection_options(settings, "producer") | {
        "acks": "all",
        "linger_ms": 5,
        "batch_size": PRODUCER_BATCH_BYTES,
        "allow_auto_create_topics": False,
    }
    _warn_if_checksums_are_slow()
    return _connect(KafkaProducer, options | overrides)


def create_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> KafkaConsumer:
    """A consumer of raw bytes, subscribed to ``topics`` if any are given.

    Offsets are never committed automatically: the pipeline commits them itself, after the
    batch they cover is stored. ``group_id=None`` gives a consumer outside any group (assign
    partitions yourself); pass ``settings.kafka.consumer_group`` for the pipeline's group.
    """
    timeouts = settings.timeouts
    options = connection_options(settings, "consumer") | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": timeouts.kafka_session_ms,
        "heartbeat_interval_ms": timeouts.kafka_heartbeat_ms,
        "max_poll_records": settings.kafka.max_poll_records,
        "fetch_max_wait_ms": timeouts.kafka_fetch_max_wait_ms,
        "allow_auto_create_topics": False,
    }
    _warn_if_checksums_are_slow()
    consumer = _connect(KafkaConsumer, options | overrides)
    if topics:
        consumer.subscribe(list(topics))
    return consumer


def create_admin(settings: Settings, **overrides: Any) -> KafkaAdminClient:
    """An admin client; close it (it is a context manager) when done."""
    _redact_admin_configuration_log()
    return _connect(KafkaAdminClient, connection_options(settings, "admin") | overrides)


def streamrec_topic_names(settings: Settings) -> list[str]:
    """Every topic streamrec reads or writes, in settings order."""
    return list(settings.topics.model_dump().values())


def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    partitions: int | None = None,
) -> list[str]:
    """Create the topics among ``names`` that do not exist yet; return those created.

    Idempotent: existing topics are left as they are (even with another partition count),
    and a topic created concurrently by another process counts as existing. Returns only
    once every named topic has a leader for each partition in the broker's metadata.
    ``partitions`` defaults to ``settings.kafka.partitions``; the wait for leaders is
    ``settings.timeouts.kafka_topics_ready_seconds``.
    """
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if not _LEGAL_TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
            raise UserFacingError(
                f"invalid topic name {name!r}: use 1-249 of letters, digits, '.', '_', '-'"
            )
    partition_count = partitions if partitions is not None else settings.kafka.partitions
    timeout_seconds = settings.timeouts.kafka_topics_ready_seconds
    if partition_count < 1:
        raise UserFacingError(f"a topic needs at least one partition, got {partition_count}")
    with create_admin(settings) as admin:
        try:
            existing = set(admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if missing:
                response = admin.create_topics(
                    {
                        name: {
                            "num_partitions": partition_count,
                            "replication_factor": settings.kafka.replication_factor,
                        }
                        for name in missing
                    },
                    raise_errors=False,
                )
                _raise_creation_errors(response)
            admin.wait_for_topics(wanted, timeout_ms=int(timeout_seconds * 1000))
        except KafkaTimeoutError:
            raise UserFacingError(
                f"topics {', '.join(wanted)} not ready after {timeout_seconds:g} s"
            ) from None
        except KafkaError as error:
            raise UserFacingError(f"cannot create topics: {error}") from None
    if missing:
        logger.info("created topics %s with %d partitions", ", ".join(missing), partition_count)
    return missing


def read_log_ranges(
    settings: Settings,
    consumer: KafkaConsumer,
    partitions: Iterable[tuple[str, int]],
    stored: Mapping[tuple[str, int], StoredOffsets] | None = None,
) -> dict[tuple[str, int], LogRange]:
    """The range of offsets each partition's log holds, as the broker lists them
    (``beginning_offsets``, ``end_offsets``).

    Where a partition's ``stored`` next offset lies past the listed end, the end is confirmed
    by a fetch, whose response carries the partition's high watermark, before anyone acts on
    it: a consumer stops on such a finding. Apache Kafka lists the high watermark itself, so
    there the fetch only repeats it; a Kafka-compatible broker may list less (the base offset
    of the last record batch plus one, say).
    """
    wanted = [TopicPartition(topic, partition) for topic, partition in sorted(set(partitions))]
    if not wanted:
        return {}
    starts = consumer.beginning_offsets(wanted)
    ends = consumer.end_offsets(wanted)
    ranges = {
        (partition.topic, partition.partition): LogRange(starts[partition], ends[partition])
        for partition in wanted
    }
    doubtful = {
        key: log.start
        for key, log in ranges.items()
        if stored is not None and key in stored and stored[key].next_offset > log.end
    }
    if doubtful:
        for key, fetched_end in _fetched_log_ends(settings, doubtful).items():
            listed = ranges[key]
            if fetched_end != listed.end:
                logger.info(
                    "%s[%d]: the broker lists the log end at %d, a fetch finds %d",
                    *key,
                    listed.end,
                    fetched_end,
                )
            ranges[key] = LogRange(listed.start, max(listed.end, fetched_end))
    return ranges


def _fetched_log_ends(
    settings: Settings, starts: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """The high watermark of each partition, from fetching at ``starts`` (a consumer of its
    own, outside any group); partitions that did not answer in time are left out."""
    probe = create_consumer(settings, group_id=None, max_partition_fetch_bytes=LOG_END_FETCH_BYTES)
    try:
        partitions = [TopicPartition(topic, partition) for topic, partition in starts]
        probe.assign(partitions)
        for partition in partitions:
            probe.seek(partition, starts[(partition.topic, partition.partition)])
        ends: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + settings.timeouts.kafka_log_end_fetch_seconds
        while len(ends) < len(partitions) and time.monotonic() < deadline:
            probe.poll(timeout_ms=200, max_records=1)
            for partition in partitions:
                end = probe.highwater(partition)
                if end is not None and (partition.topic, partition.partition) not in ends:
                    ends[(partition.topic, partition.partition)] = end
                    # Paused, so that the next poll reads the other partitions' responses.
                    probe.pause(partition)
        return ends
    finally:
        probe.close()


def checksums_are_accelerated() -> bool:
    """True if kafka-python checks record CRCs with the native crc32c extension.

    The pure-Python fallback works but costs more CPU than the rest of a consumer's work.
    """
    try:
        from crc32c import crc32c as native_crc32c
    except ImportError:
        return False
    return record_util.calc_crc32c.__defaults__ == (native_crc32c,)


def _warn_if_checksums_are_slow() -> None:
    if not checksums_are_accelerated():
        logger.warning(
            "kafka-python uses its pure-Python CRC-32C: install the crc32c package "
            "(a streamrec dependency) for full consumer throughput"
        )


def _raise_creation_errors(response: dict[str, Any]) -> None:
    for topic in response.get("topics", []):
        code = topic.get("error_code", 0)
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        reason = topic.get("error_message") or f"error code {code}"
        raise UserFacingError(f"cannot create topic {topic.get('name')!r}: {reason}")


def _connect(client_class: type, options: dict[str, Any]) -> Any:
    try:
        with _bootstrap_narration_hidden():
            return client_class(**options)
    except (KafkaTimeoutError, KafkaConnectionError):
        raise KafkaUnavailableError(
            f"Kafka at {','.join(options['bootstrap_servers'])} does not answer"
        ) from None


# kafka-python logs every failed bootstrap attempt, a dozen warnings and errors in the ten
# seconds it tries; _connect reports a failed bootstrap itself, in one line. Shown at DEBUG.
_BOOTSTRAP_NARRATORS = ("kafka.net.manager", "kafka.net.connection")
_bootstrap_narration_lock = threading.Lock()
_bootstraps_in_progress = 0


class _BootstrapNarrationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger("kafka").isEnabledFor(logging.DEBUG)


_BOOTSTRAP_NARRATION_FILTER = _BootstrapNarrationFilter()


@contextlib.contextmanager
def _bootstrap_narration_hidden() -> Iterator[None]:
    """Hide kafka-python's connection narration while a client bootstraps (counted, as
    clients may bootstrap on several threads at once)."""
    global _bootstraps_in_progress
    with _bootstrap_narration_lock:
        _bootstraps_in_progress += 1
        if _bootstraps_in_progress == 1:
            for name in _BOOTSTRAP_NARRATORS:
                logging.getLogger(name).addFilter(_BOOTSTRAP_NARRATION_FILTER)
    try:
        yield
    finally:
        with _bootstrap_narration_lock:
            _bootstraps_in_progress -= 1
            if _bootstraps_in_progress == 0:
                for name in _BOOTSTRAP_NARRATORS:
                    logging.getLogger(name).removeFilter(_BOOTSTRAP_NARRATION_FILTER)


class _RedactPasswordFilter(logging.Filter):
    """Masks the SASL password in kafka-python's debug log of the admin configuration, even
    in a process whose logging streamrec did not set up (its own setup masks every line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_secrets(record.getMessage()), None
        return True


def _redact_admin_configuration_log() -> None:
    # kafka-python logs the admin client's full configuration at DEBUG, password included.
    admin_logger = logging.getLogger("kafka.admin.client")
    if not any(isinstance(existing, _RedactPasswordFilter) for existing in admin_logger.filters):
        admin_logger.addFilter(_RedactPasswordFilter())
