"""The benchmarks, run small on the real broker (and PostgreSQL for the pipeline one): they
finish, every event is accounted for, and they write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pydantic import SecretStr

from streamrec.cli.bench import command as bench
from streamrec.config import Settings
from tests.integration import trainer_support
from tests.integration.pipeline_support import on_postgresql

# The trainer tests' small model, with a larger id table for the benchmarks' catalogues.
SMALL_MODEL = {**trainer_support.SMALL_MODEL, "hash_buckets": 1024}


def _small(settings: Settings, **kafka: object) -> Settings:
    return settings.model_copy(
        update={
            "model": settings.model.model_copy(update=SMALL_MODEL),
            "serving": settings.serving.model_copy(update=trainer_support.SMALL_SERVING),
            "kafka": settings.kafka.model_copy(update={"max_poll_records": 200, **kafka}),
        }
    )


def test_prequential_benchmark_scores_every_event_from_the_topics(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    events, train_share = 3_000, 0.2
    outcome = CliRunner().invoke(
        bench,
        [
            "prequential",
            "--dataset",
            "synthetic",
            "--limit",
            str(events),
            "--train-share",
            str(train_share),
            "--training-steps",
            "20",
            "--frozen",
            "--output-dir",
            str(tmp_path),
            "--doc",
            str(tmp_path / "performance.md"),
        ],
        obj=_small(kafka_settings),
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    # The small model's many settings are named by a digest.
    [stem] = [
        path.with_suffix("")
        for path in tmp_path.glob(f"prequential-synthetic-{events}-batch200-*.json")
    ]
    assert stem.name.startswith(f"prequential-synthetic-{events}-batch200-training-steps20-frozen-")
    result = json.loads(stem.with_suffix(".json").read_text())
    methods = {method["method"]: method for method in result["methods"]}
    assert set(methods) == {
        "streamrec (pipeline)",
        "streamrec (pipeline), own lists only",
        "popularity",
        "popularity, decayed",
        "river BiasedMF",
        "river FunkMF",
        "co-occurrence",
        "EASE, refit every 10,000 events",
    }
    assert result["regime"] == "per consumer batch of up to 200" and result["trainer"] is None
    assert result["consumer_batches"] >= events // 200
    assert set(result["cost_per_event_ms"]) == set(methods) - {
        "streamrec (pipeline), own lists only"
    }
    scored = events - int(events * train_share)
    assert all(method["events"] == scored for method in methods.values())
    # The planted groups make the published lists hit: the join found the real outputs.
    assert methods["streamrec (pipeline)"]["hit_rate"] > 0.0
    own_lists = methods["streamrec (pipeline), own lists only"]
    assert own_lists["by_events_before"]["0"]["hit_rate"] == 0.0  # nothing of their own yet
    # Every event of a user before their first message was judged against the fallback
    # recorded before its batch: first events at least, and none against nothing.
    served = result["pipeline_events_served_by"]
    assert sum(served.values()) == scored
    assert served["nothing"] == 0
    assert served["fallback"] >= methods["streamrec (pipeline)"]["by_events_before"]["0"]["events"]
    assert methods["streamrec (pipeline)"]["hit_rate"] >= own_lists["hit_rate"]
    assert "| streamrec (pipeline) |" in stem.with_suffix(".md").read_text()
    assert stem.with_suffix(".png").stat().st_size > 0
    assert (
        "## Prequential hit rate of the pipeline on synthetic, per consumer batch of up to "
        "200, model frozen, first 3,000 events"
    ) in (tmp_path / "performance.md").read_text(encoding="utf-8")


@on_postgresql
def test_pipeline_benchmark_measures_every_phase(
    kafka_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # The benchmark makes a schema of its own for each phase on this server, and drops it.
    settings = _small(kafka_settings).model_copy(update={"database_url": SecretStr(database_url)})
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\n## Trainer\n\nkept\n", encoding="utf-8")
    outcome = CliRunner().invoke(
        bench,
        [
            "pipeline",
            "--events",
            "3000",
            "--rate",
            "300",
            "--latency-seconds",
            "3",
            "--populations",
            "500,2000",
            "--output-dir",
            str(tmp_path),
            "--doc",
            str(doc),
        ],
        obj=settings,
        catch_exceptions=False,
    )
    assert outcome.exit_code == 0, outcome.output
    [stem] = [path.with_suffix("") for path in tmp_path.glob("pipeline-*.json")]
    assert stem.name.startswith("pipeline-events3000-rate300-latency-seconds3-populations500-2000")
    result = json.loads(stem.with_suffix(".json").read_text())
    assert [raw["what"].split(" ")[0] for raw in result["raw_limits"]] == [
        "kafka-python",
        "kafka-python",
        "database",
    ]
    assert all(raw["count"] == 3000 for raw in result["raw_limits"])
    assert [point["stored_users"] for point in result["sustained"]] == [0, 500, 2000]
    assert all(point["events"] == 3000 for point in result["sustained"])
    latency = result["latency"]
    assert latency["events"] == latency["answered"] == 900
    assert 0 < latency["seconds"]["p50"] <= latency["seconds"]["p99"]
    assert len(result["targets"]) == 3 if result["sustained"][-1]["events_per_second"] else 2
    text = doc.read_text(encoding="utf-8")
    assert "## Pipeline" in text and "kept" in text and f"{stem.name}.png" in text
    assert stem.with_suffix(".png").stat().st_size > 0
