"""The metrics endpoint, scraped over HTTP on a free port, health probes and log format."""

from __future__ import annotations

import doctest
import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.interaction_consumer import BatchTiming
from streamrec.config import ObservabilitySettings
from streamrec.events import RecommendationMessage, SourceEvent
from streamrec.observability import (
    ConsumerMetrics,
    Heartbeat,
    ObservabilityServer,
    Readiness,
    ReadinessCheck,
    TrainerMetrics,
    configure_logging,
    health,
    logs,
    metrics,
    server,
    wiring,
)
from streamrec.services.batch import BatchResult, SourceRecord
from streamrec.storage import create_memory_database
from streamrec.storage.records import DeadLetter


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _batch() -> tuple[BatchResult, list[SourceRecord]]:
    result = BatchResult(
        recommendations=[
            RecommendationMessage("u1", (), 4, (), 0.0, SourceEvent("interactions", 0, 2, 0.0)),
            RecommendationMessage("u2", (), 4, (), 0.0, SourceEvent("interactions", 1, 0, 0.0)),
        ],
        dead_letters=[DeadLetter("interactions", b"{", "invalid_json", None, 0, 1, b"u1", 99.0)],
        model_version=4,
    )
    counters = result.counters
    counters.records, counters.interactions_applied, counters.interactions_ignored = 5, 2, 1
    counters.items_upserted = 1
    counters.dead_letters_by_reason.update({"invalid_json": 1})
    records = [
        SourceRecord("interactions", 0, 0, b"u1", b"", broker_timestamp=99.0),
        SourceRecord("interactions", 0, 1, b"u1", b"{", broker_timestamp=99.5),  # dead letter
        SourceRecord("interactions", 0, 2, b"u1", b"", broker_timestamp=99.75),
        SourceRecord("interactions", 1, 0, b"u2", b"", broker_timestamp=99.9),
        SourceRecord("items", 0, 0, b"i1", b"", broker_timestamp=90.0),
    ]
    return result, records


@pytest.fixture
def consumer_metrics() -> ConsumerMetrics:
    return ConsumerMetrics()


@pytest.fixture
def served(consumer_metrics: ConsumerMetrics) -> Iterator[ObservabilityServer]:
    with ObservabilityServer(consumer_metrics, host="127.0.0.1", port=0) as running:
        yield running


def test_metrics_endpoint_serves_batch_counts_and_latencies(
    consumer_metrics: ConsumerMetrics, served: ObservabilityServer
) -> None:
    result, records = _batch()
    consumer_metrics.observe_batch(result, BatchTiming(100.0, 100.5, 100.75, 100.8), records)
    consumer_metrics.set_lag({("interactions", 0): 7, ("interactions", 1): 0})

    status, body = _get(f"{served.url}/metrics")

    assert status == 200
    samples = _samples(body)
    assert samples[("streamrec_events_processed_total", (("outcome", "applied"),))] == 2
    assert samples[("streamrec_events_processed_total", (("outcome", "ignored"),))] == 1
    assert samples[("streamrec_events_processed_total", (("outcome", "item"),))] == 1
    assert samples[("streamrec_dead_letters_total", (("reason", "invalid_json"),))] == 1
    assert samples[("streamrec_recommendations_published_total", ())] == 2
    assert samples[("streamrec_batch_size_records_sum", ())] == 5
    assert samples[("streamrec_active_model_version", ())] == 4
    lag_key = ("streamrec_consumer_lag_records", (("partition", "0"), ("topic", "interactions")))
    assert samples[lag_key] == 7
    total_key = ("streamrec_batch_latency_seconds_sum", (("stage", "total"),))
    assert samples[total_key] == pytest.approx(0.8)
    # Three valid interaction records (not the dead letter, not the item): 1.75, 1.0, 0.85 s.
    assert samples[("streamrec_event_to_recommendation_seconds_count", ())] == 3
    assert samples[("streamrec_event_to_recommendation_seconds_sum", ())] == pytest.approx(3.6)
    bucket = ("streamrec_event_to_recommendation_seconds_bucket", (("le", "1.0"),))
    assert samples[bucket] == 2


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = ConsumerMetrics(), ConsumerMetrics()
    result, records = _batch()
    first.observe_batch(result, BatchTiming(1.0, 2.0, 3.0, 4.0), records)

    assert first.sample("streamrec_batches_total") == 1
    assert second.sample("streamrec_batches_total") == 0


def test_forgotten_partitions_leave_the_lag_gauge(consumer_metrics: ConsumerMetrics) -> None:
    consumer_metrics.set_lag({("interactions", 0): 3, ("interactions", 1): 4})
    consumer_metrics.forget_partitions([("interactions", 1), ("interactions", 9)])

    assert consumer_metrics.sample("streamrec_consumer_lag_records", topic="interactions",
                                   partition="0") == 3  # fmt: skip
    assert consumer_metrics.sample("streamrec_consumer_lag_records", topic="interactions",
                                   partition="1") is None  # fmt: skip


def test_healthz_follows_the_heartbeat() -> None:
    clock = ManualClock()
    heartbeat = Heartbeat(timeout_seconds=10.0, clock=clock)
    with ObservabilityServer(
        ConsumerMetrics(), heartbeat=heartbeat, host="127.0.0.1", port=0
    ) as running:
        assert _get(f"{running.url}/healthz") == (200, "ok\n")
        clock.now = 25.0
        status, body = _get(f"{running.url}/healthz")
        assert (status, body) == (503, "loop silent for 25 s\n")
        heartbeat.beat()
        assert _get(f"{running.url}/healthz")[0] == 200


def test_readyz_reports_every_failing_check() -> None:
    partitions: set[int] = set()

    def database() -> str | None:
        raise ConnectionError("refused")

    readiness = Readiness(
        [
            ReadinessCheck("partitions", lambda: None if partitions else "none assigned"),
            ReadinessCheck("database", database),
        ]
    )
    with ObservabilityServer(
        ConsumerMetrics(), readiness=readiness, host="127.0.0.1", port=0
    ) as running:
        status, body = _get(f"{running.url}/readyz")
        assert status == 503
        assert body.splitlines() == [
            "partitions: none assigned",
            "database: ConnectionError: refused",
        ]


def test_consumer_readiness_needs_partitions_and_a_database() -> None:
    assigned: set[int] = set()
    readiness = wiring.consumer_readiness(lambda: assigned, create_memory_database())
    assert readiness.problems() == ["partitions: no partitions assigned"]
    assigned.add(0)
    assert readiness.problems() == []


def test_unknown_path_is_not_found(served: ObservabilityServer) -> None:
    assert _get(f"{served.url}/nothing")[0] == 404


def test_observed_hooks_count_batches_beat_track_partitions_and_chain() -> None:
    from consumers import ConsumerHooks, Stage

    clock = ManualClock()
    heartbeat = Heartbeat(timeout_seconds=1.0, clock=clock)
    consumer_metrics = ConsumerMetrics()
    assigned = wiring.AssignedPartitions()
    seen: list[str] = []
    hooks = wiring.observed_hooks(
        consumer_metrics,
        heartbeat,
        ConsumerHooks(on_batch=lambda result, timing, records: seen.append("batch")),
        assigned,
    )
    clock.now = 5.0
    assert not heartbeat.alive()
    hooks.on_stage(Stage.POLLED, 1)
    assert heartbeat.alive()
    result, records = _batch()
    hooks.on_batch(result, BatchTiming(100.0, 100.5, 100.75, 100.8), records)
    hooks.on_retry(ConnectionError("reset"), 0.2)
    hooks.on_assignment(frozenset({("interactions", 0), ("interactions", 1)}))
    hooks.on_lag({("interactions", 0): 5, ("interactions", 1): 2})
    hooks.on_assignment(frozenset({("interactions", 0)}))

    assert seen == ["batch"]
    assert consumer_metrics.sample("streamrec_batches_total") == 1
    assert consumer_metrics.sample("streamrec_event_to_recommendation_seconds_count") == 3
    assert consumer_metrics.sample("streamrec_batch_retries_total", error="ConnectionError") == 1
    assert assigned() == frozenset({("interactions", 0)})
    lag = "streamrec_consumer_lag_records"
    assert consumer_metrics.sample(lag, topic="interactions", partition="0") == 5
    # The partition another consumer took over is no longer reported by this one.
    assert consumer_metrics.sample(lag, topic="interactions", partition="1") is None


def test_trainer_metrics() -> None:
    clock = ManualClock()
    trainer = TrainerMetrics(clock=clock)
    clock.now = 50.0
    trainer.observe_run("skipped")
    clock.now = 80.0
    trainer.observe_run("promoted", fine_tune_seconds=12.0, rebuild_seconds=3.0, rebuilt_users=9)
    trainer.set_active_model_version(2)

    samples = _samples(trainer.exposition().decode())
    assert samples[("streamrec_trainer_runs_total", (("outcome", "skipped"),))] == 1
    assert samples[("streamrec_trainer_last_run_timestamp_seconds", ())] == 80.0
    assert samples[("streamrec_trainer_last_promotion_timestamp_seconds", ())] == 80.0
    assert samples[("streamrec_trainer_fine_tune_seconds_sum", ())] == 12.0
    assert samples[("streamrec_trainer_rebuilt_users_total", ())] == 9
    assert samples[("streamrec_active_model_version", ())] == 2


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgresql+psycopg://app:hunter2@db:5432/recs failed", "hunter2"),
        ('config {"sasl_plain_password": "pa55word", "acks": 1}', "pa55word"),
        ("token=abc123 retry", "abc123"),
    ],
)
def test_logs_never_show_secrets(text: str, secret: str) -> None:
    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_format="json"), stream)
    try:
        logging.getLogger("streamrec.test").warning("failure: %s", text, extra={"batch": 3})
    finally:
        logging.getLogger().handlers.clear()
    line = json.loads(stream.getvalue())
    assert secret not in stream.getvalue()
    assert "***" in line["message"]
    assert (line["level"], line["logger"], line["batch"]) == ("WARNING", "streamrec.test", 3)


def test_text_logs_and_exceptions() -> None:
    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_format="text", log_level="DEBUG"), stream)
    try:
        try:
            raise ValueError("postgresql://u:topsecret@h/d")
        except ValueError:
            logging.getLogger("streamrec.test").exception("it broke")
    finally:
        logging.getLogger().handlers.clear()
    output = stream.getvalue()
    assert "ERROR streamrec.test: it broke" in output
    assert "ValueError" in output


def test_a_read_on_a_socket_closed_at_shutdown_logs_no_traceback() -> None:
    """kafka-python's own reader, on a transport whose socket its close released, as it
    happens when a client closes while its network thread waits to read."""
    from kafka.net.transport import KafkaTCPTransport

    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_format="text"), stream)
    try:
        _, error = KafkaTCPTransport(net=None, sock=None)._sock_recv()
        try:
            raise AttributeError("'NoneType' object has no attribute 'send'")
        except AttributeError:
            logging.getLogger("streamrec.test").exception("our own bug")
        try:
            raise OSError("connection reset")
        except OSError:
            logging.getLogger("kafka.net.transport").exception("a real network error")
    finally:
        logging.getLogger().handlers.clear()
    output = stream.getvalue()
    assert error is not None  # the library still sees the failed read
    assert "has no attribute 'recv'" not in output
    assert "our own bug" in output
    assert "a real network error" in output
    assert "connection reset" in output


@pytest.mark.parametrize("module", [health, logs, metrics, server, wiring])
def test_examples_in_docstrings_hold(module: object) -> None:
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0
    assert outcome.failed == 0
