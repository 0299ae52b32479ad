"""The benchmarks' own arithmetic and bookkeeping: rates, percentiles, latency matching,
result files and the event mix. (The benchmarks themselves run in tests/integration.)"""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
from pathlib import Path

import pytest

from streamrec.benchmarks import consumer_processes, prequential, recommendation_latency, stack
from streamrec.benchmarks.pipeline import (
    Latency,
    PipelineResults,
    Sustained,
    benchmark_events,
    markdown_report,
    plot,
    targets,
)
from streamrec.benchmarks.results import replace_section
from streamrec.benchmarks.throughput import percentiles, percentiles_by_window, sustained_rate
from streamrec.benchmarks.topic_tap import answer_latencies
from streamrec.config import Settings
from streamrec.evaluation.prequential import (
    InputEvent,
    Outcome,
    PublishedRecommendationJoin,
)


def test_sustained_rate_ignores_start_up_and_tail() -> None:
    # 5 s to join the group, then 1,000 records/s, then a slow tail.
    samples = [(0.0, 0), (5.0, 0)] + [(5.0 + s, 1000 * s) for s in range(1, 10)] + [(30.0, 10_000)]
    assert sustained_rate(samples, total=10_000) == pytest.approx(1000.0)
    assert sustained_rate(samples[:3], total=10_000) is None


def test_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    assert percentiles([]) == {}


def test_each_input_is_answered_by_the_first_message_at_or_after_it() -> None:
    inputs = [(("u1", 0), 1, 10.0), (("u1", 0), 2, 10.1), (("u2", 1), 1, 10.2)]
    messages = [
        (("u1", 0), 2, 10.6),  # answers both of u1's records
        (("u1", 0), 2, 11.0),  # republished after a crash: not the first answer
        (("u2", 0), 9, 10.3),  # another partition's u2: unrelated
    ]
    assert answer_latencies(inputs, messages) == pytest.approx([0.6, 0.5])


def test_replace_section_keeps_the_other_sections(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nIntro.\n\n## Trainer\n\ntrainer table\n", encoding="utf-8")
    replace_section(doc, "Pipeline", "first\n")
    replace_section(doc, "Pipeline", "second\n")
    text = doc.read_text(encoding="utf-8")
    assert text.count("## Pipeline") == 1
    assert "second" in text and "first" not in text
    assert "Intro." in text and "trainer table" in text


def test_benchmark_events_mix_stored_and_new_users() -> None:
    events = benchmark_events(2_000, stored_users=100)
    stored = {e.user_id for e in events if e.user_id.startswith("pop-")}
    new = {e.user_id for e in events if e.user_id.startswith("new-")}
    assert len(events) == 2_000
    assert stored and new and len(stored) + len(new) == len({e.user_id for e in events})
    assert all(1 <= int(user.removeprefix("pop-")) <= 100 for user in stored)
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(events))
    assert benchmark_events(100, stored_users=0)[0].user_id.startswith("u")


def test_targets_report_what_is_met_and_what_is_not() -> None:
    measured = PipelineResults(consumers=1)
    measured.sustained = [
        Sustained(0, 1000, 6_000.0),
        Sustained(10_000, 1000, 5_000.0),
        Sustained(1_000_000, 1000, 2_500.0),
    ]
    measured.latency = Latency(1000.0, 990.0, 100, 100, {"p50": 0.2, "p95": 0.5, "p99": 1.4})
    verdicts = {target["target"].split(" ")[0]: target["met"] for target in targets(measured)}
    assert verdicts == {"at": True, "p99": False, "per-event": False}
    report = markdown_report(measured)
    assert "**not yet**" in report and "| met |" in report
    assert "p99 1,400 ms" in report


@pytest.mark.parametrize("with_timeline", [True, False])
def test_the_plot_draws_latency_over_the_run_when_it_was_measured(
    tmp_path: Path, with_timeline: bool
) -> None:
    measured = PipelineResults(consumers=1)
    measured.sustained = [Sustained(0, 1000, 3_000.0), Sustained(10_000, 1000, 2_000.0)]
    measured.raw = [{"what": "kafka-python produce", "per_second": 20_000.0}]
    latencies = [0.1 * number for number in range(1, 41)]
    over_time = percentiles_by_window(latencies, 20) if with_timeline else []
    measured.latency = Latency(1000.0, 990.0, 40, 40, percentiles(latencies), over_time=over_time)
    if with_timeline:
        assert len(over_time) == 20
        assert over_time[0]["p99"] < over_time[-1]["p50"]  # a run falling behind shows
    path = plot(measured, tmp_path / "pipeline.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    saved = json.loads(json.dumps(measured.to_dict()))
    assert len(saved["latency"]["over_time"]) == (20 if with_timeline else 0)


def test_child_process_environment_reproduces_the_settings() -> None:
    settings = Settings(kafka={"bootstrap_servers": "k:9092", "partitions": 2})
    environment = consumer_processes.settings_environment(stack.isolated_topics(settings, "abc"))
    assert environment["STREAMREC_KAFKA__BOOTSTRAP_SERVERS"] == "k:9092"
    assert environment["STREAMREC_TOPICS__INTERACTIONS"] == "interactions-abc"
    assert environment["STREAMREC_KAFKA__CONSUMER_GROUP"] == "streamrec-consumers-abc"
    assert environment["STREAMREC_DATABASE_URL"].startswith("sqlite:///")


@pytest.mark.parametrize(
    "name",
    [
        "consumer_processes",
        "initial_model",
        "population",
        "prequential",
        "raw_limits",
        "recommendation_latency",
        "results",
        "served_fallback",
        "stack",
        "throughput",
        "topic_tap",
    ],
)
def test_examples_in_docstrings_hold(name: str) -> None:
    module = importlib.import_module(f"streamrec.benchmarks.{name}")
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0
    assert outcome.failed == 0


class _SlowPipeline:
    """A tap over a pipeline that answers one event per read, each read taking ``step``
    seconds of a fake clock, until it has answered ``answers`` events."""

    def __init__(self, events: int, answers: int, step: float) -> None:
        self.join = PublishedRecommendationJoin()
        self.now = 0.0
        self._step = step
        self._answers = answers
        for offset in range(events):
            self.join.add_event(InputEvent(offset, f"u{offset}", "a", 0, offset))

    def clock(self) -> float:
        return self.now

    def alive(self) -> bool:
        return True

    def read(self) -> list[Outcome]:
        self.now += self._step
        answered = self.join.decided
        if answered >= self._answers:
            return []
        return self.join.add_recommendation(f"u{answered}", 0, answered, ["a"])

    def finish(self) -> list[Outcome]:
        return self.join.finish()


def _drain(answers: int) -> tuple[int, int]:
    """Drain a pipeline of 50 events that answers one every 10 s until it has answered
    ``answers``; returns the unanswered events and the events on the board."""
    pipeline = _SlowPipeline(events=50, answers=answers, step=10.0)
    score = prequential.PipelineScore(scored_from=0, window=10)
    unanswered = prequential._drain(
        pipeline, score, 50, None, pipeline, stall_seconds=30.0, clock=pipeline.clock
    )
    return unanswered, score.board.events


def test_drain_waits_as_long_as_the_pipeline_progresses() -> None:
    # All 50 answered: 500 s in all, far beyond the stall limit.
    assert _drain(answers=50) == (0, 50)


def test_drain_stops_when_the_pipeline_stops_answering_and_says_how_much_is_left() -> None:
    # The rest are decided at the end.
    assert _drain(answers=20) == (30, 50)


def test_recommendation_latency_times_both_paths_and_reports_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short run on the fixture MovieLens files: both paths timed for every user, the
    serving path never scores more candidates than its M shortlists hold."""
    from streamrec.cli.main import main

    monkeypatch.setenv("STREAMREC_MODEL__HASH_BUCKETS", "256")
    monkeypatch.setenv("STREAMREC_SERVING__SHORTLIST_LENGTH", "5")
    data = Path(__file__).resolve().parents[1] / "data" / "ml-latest"
    arguments = ["bench", "recommendation-latency", "--dataset", str(data), "--steps", "3"]
    arguments += ["--users", "4", "--repeats", "2", "--output-dir", str(tmp_path)]
    arguments += ["--doc", str(tmp_path / "performance.md")]
    try:
        main(arguments)
    except SystemExit as exit_:  # click may exit, with 0 on success
        assert exit_.code in (0, None)
    # Named by the options and the settings that differ from the defaults.
    stem = "recommendation-latency-ml-latest-steps3-users4-repeats2"
    stem += "-model.hash_buckets256-serving.shortlist_length5"
    result = json.loads((tmp_path / f"{stem}.json").read_text())
    assert set(result["paths"]) == {
        recommendation_latency.SERVING,
        recommendation_latency.FULL_CATALOGUE,
    }
    for durations in result["durations_ns"].values():
        assert len(durations) == result["users"] * 2 and min(durations) > 0
    assert result["mean_candidates"] <= 5 * result["top_memberships"]
    assert "Target: one recommendation p99" in (tmp_path / "performance.md").read_text()
    assert (tmp_path / f"{stem}.png").stat().st_size > 0
