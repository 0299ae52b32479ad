"""``streamrec bench soak``, run small on the real broker and PostgreSQL: it samples the
consumer's memory at every step of events applied, and writes what it promises."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pydantic import SecretStr

from streamrec.benchmarks.soak import command as soak
from streamrec.config import Settings
from tests.integration import trainer_support
from tests.integration.pipeline_support import on_postgresql

EVENTS = 4_000
SAMPLE_EVERY = 1_000
# Paced, so that the consumer applies each step in about a second: the benchmark samples
# every step rather than one sample for several.
RATE = 1_000


@on_postgresql
def test_soak_benchmark_samples_the_consumer_every_step_and_states_the_bounds(
    kafka_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={
            "database_url": SecretStr(database_url),
            "model": kafka_settings.model.model_copy(update=trainer_support.SMALL_MODEL),
            "serving": kafka_settings.serving.model_copy(update=trainer_support.SMALL_SERVING),
            "kafka": kafka_settings.kafka.model_copy(update={"max_poll_records": 200}),
            "consumer": kafka_settings.consumer.model_copy(update={"user_cache_size": 123}),
        }
    )
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## Trainer\n\nkept\n", encoding="utf-8")
    outcome = CliRunner().invoke(
        soak,
        [
            "--events",
            str(EVENTS),
            "--sample-every",
            str(SAMPLE_EVERY),
            "--rate",
            str(RATE),
            "--output-dir",
            str(tmp_path),
            "--doc",
            str(doc),
        ],
        obj=settings,
        catch_exceptions=False,
    )

    assert outcome.exit_code == 0, outcome.output
    stem = tmp_path / f"soak-events{EVENTS}-sample-every{SAMPLE_EVERY}-rate{RATE}"
    result = json.loads(stem.with_suffix(".json").read_text())
    samples = result["samples"]
    steps = list(range(SAMPLE_EVERY, EVENTS + 1, SAMPLE_EVERY))
    assert len(samples) == len(steps), samples
    for sample, step in zip(samples, steps, strict=True):
        assert sample["events_applied"] >= step
        assert sample["resident_bytes"] > 0
    assert samples[-1]["events_applied"] == EVENTS
    applied = [sample["events_applied"] for sample in samples]
    users = [sample["users_stored"] for sample in samples]
    assert applied == sorted(applied) and users == sorted(users) and users[0] > 0
    assert result["bounds"]["consumer.user_cache_size"] == 123
    assert result["growth"]["total_megabytes"] is not None
    report = stem.with_suffix(".md").read_text()
    assert "| events applied |" in report and "| 123 (the run stored" in report
    assert stem.with_suffix(".png").stat().st_size > 0
    text = doc.read_text(encoding="utf-8")
    assert "## Soak: a consumer's memory over a long run" in text and "kept" in text
